"""Regenerate the built-in suites deterministically: strawberry, arithmetic, game24, format, and the agent
suites with tools (strawberry-tools, arithmetic-tools, shop).

Run from anywhere: ``python resources/suites/build_suites.py``. The output files sit next
to this script. A fixed seed makes every run produce byte-identical files, so a diff of
the JSONL files always reflects a deliberate change here. This is data tooling; the
package never imports it.
"""
from __future__ import annotations

import json
import random
from fractions import Fraction
from itertools import combinations
from pathlib import Path

SEED = 20240611
HELDOUT_FRACTION = 0.3
HERE = Path(__file__).resolve().parent
SOURCE = "lessonlab build_suites.py"


def assign_splits(tasks: list[dict], rng: random.Random) -> list[dict]:
    """Mark a fixed random ~30% of tasks as heldout, keeping file order."""
    heldout = set(rng.sample(range(len(tasks)), round(len(tasks) * HELDOUT_FRACTION)))
    for index, task in enumerate(tasks):
        task["split"] = "heldout" if index in heldout else "train"
    return tasks


def write_suite(name: str, tasks: list[dict]) -> None:
    """Write tasks as JSONL with a stable field order."""
    ids = [task["id"] for task in tasks]
    assert len(ids) == len(set(ids)), f"duplicate ids in {name}"
    order = ("id", "prompt", "tools", "max_turns", "verifier", "split", "metadata")
    lines = [json.dumps({key: task[key] for key in order if key in task}, ensure_ascii=False) for task in tasks]
    (HERE / f"{name}.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
    print(f"{name}: {len(tasks)} tasks")


# ---------------------------------------------------------------- strawberry

# Real English words, many with repeated letters (the classic failure of token-based counting).
WORDS = """
strawberry raspberry blueberry cranberry gooseberry elderberry mississippi bookkeeper
committee banana coffee balloon parallel pepper bubble success address occurrence
millennium necessary independence referee engineering tennessee nonsense accommodation
whippersnapper peppermint hippopotamus cheese sleepless assassin grasshopper interference
excellence entertainment pineapple tomorrow woodpecker lollipop puppy papaya caterpillar
umbrella vacuum giraffe letter bottle butterfly dessert mammal programming difference
knickknack syllable possession barrel cinnamon tattoo coconut pizzazz bookworm voodoo
unnecessary assessment embarrass bookshelf llama kayak rhythm onomatopoeia remembrance
""".split()


def letter_counts(word: str) -> dict[str, int]:
    return {letter: word.count(letter) for letter in sorted(set(word))}


def strawberry_tasks(rng: random.Random) -> list[dict]:
    """One repeated-letter question per word, plus single and absent letters for some words."""
    tasks: list[dict] = []
    seen: set[tuple[str, str]] = set()

    def add(word: str, letter: str) -> None:
        if (word, letter) in seen:
            return
        seen.add((word, letter))
        count = word.count(letter)
        tasks.append({
            "id": f"strawberry-{letter}-{word}",
            "prompt": (f'How many times does the letter "{letter}" appear in the word "{word}"? '
                       'Give the count on a final line of the form "Answer: <number>".'),
            "verifier": {"kind": "numeric", "answer": count, "tolerance": 0},
            "metadata": {"answer": count, "word": word, "letter": letter, "source": SOURCE},
        })

    add("strawberry", "r")  # the namesake question always comes first
    for word in WORDS:
        counts = letter_counts(word)
        repeated = [letter for letter, n in counts.items() if 2 <= n <= 4]
        if repeated:
            add(word, rng.choice(repeated))
        draw = rng.random()
        if draw < 0.35:
            singles = [letter for letter, n in counts.items() if n == 1]
            if singles:
                add(word, rng.choice(singles))
        elif draw < 0.6:
            absent = [letter for letter in "abcdefghijklmnopqrstuvwxyz" if letter not in counts]
            add(word, rng.choice(absent))
    return assign_splits(tasks, rng)


# ---------------------------------------------------------------- arithmetic

def arithmetic_tasks(rng: random.Random) -> list[dict]:
    """Multi-digit additions and multiplications with exact integer answers."""
    tasks: list[dict] = []
    plans = ([("add", 3, 4)] * 7 + [("add", 4, 5)] * 7 + [("add", 5, 5)] * 6
             + [("multiply", 2, 2)] * 14 + [("multiply", 3, 2)] * 14 + [("multiply", 3, 3)] * 12)
    for op, digits_a, digits_b in plans:
        a = rng.randint(10 ** (digits_a - 1), 10 ** digits_a - 1)
        b = rng.randint(10 ** (digits_b - 1), 10 ** digits_b - 1)
        answer = a + b if op == "add" else a * b
        symbol = "+" if op == "add" else "×"
        tasks.append({
            "id": f"arithmetic-{op}-{a}-{b}",
            "prompt": (f"What is {a} {symbol} {b}? Work it out carefully, then give the result "
                       'on a final line of the form "Answer: <number>".'),
            "verifier": {"kind": "numeric", "answer": answer, "tolerance": 0},
            "metadata": {"answer": answer, "operation": op, "source": SOURCE},
        })
    return assign_splits(tasks, rng)


# ---------------------------------------------------------------- game24

def solve24(numbers: list[int], target: int = 24) -> str | None:
    """One expression using every number once that equals target, or None (exhaustive search)."""
    def search(items: list[tuple[Fraction, str]]) -> str | None:
        if len(items) == 1:
            return items[0][1] if items[0][0] == target else None
        for i, j in combinations(range(len(items)), 2):
            (a, ea), (b, eb) = items[i], items[j]
            rest = [items[k] for k in range(len(items)) if k not in (i, j)]
            options = [(a + b, f"({ea}+{eb})"), (a * b, f"({ea}*{eb})"),
                       (a - b, f"({ea}-{eb})"), (b - a, f"({eb}-{ea})")]
            if b != 0:
                options.append((a / b, f"({ea}/{eb})"))
            if a != 0:
                options.append((b / a, f"({eb}/{ea})"))
            for value, expr in options:
                found = search(rest + [(value, expr)])
                if found:
                    return found
        return None

    found = search([(Fraction(n), str(n)) for n in numbers])
    if found and found.startswith("(") and found.endswith(")"):
        found = found[1:-1]
    return found


def game24_tasks(rng: random.Random) -> list[dict]:
    """Solvable four-number puzzles: a few classics, then random draws from 1-13."""
    puzzles = [[4, 7, 8, 8], [1, 5, 5, 5], [3, 3, 8, 8], [1, 3, 4, 6], [1, 4, 5, 6], [2, 3, 5, 12]]
    while len(puzzles) < 60:
        draw = sorted(rng.randint(1, 13) for _ in range(4))
        if draw not in puzzles and solve24(draw):
            puzzles.append(draw)
    tasks = []
    for numbers in puzzles:
        solution = solve24(numbers)
        assert solution, numbers
        listed = ", ".join(str(n) for n in numbers)
        tasks.append({
            "id": "game24-" + "-".join(str(n) for n in numbers),
            "prompt": (f"Make 24 from the numbers {listed}. Use each number exactly once, "
                       "combined with only + - * / and parentheses (no other numbers, no powers, "
                       "no joining digits together; fractions are fine along the way). "
                       'Give the expression on a final line of the form "Answer: <expression>", '
                       'for example "Answer: (1+2+3)*4" for the numbers 1, 2, 3, 4.'),
            "verifier": {"kind": "game24", "numbers": numbers, "target": 24},
            "metadata": {"answer": solution, "source": SOURCE},
        })
    return assign_splits(tasks, rng)


# ---------------------------------------------------------------- format

CAPITALS = [("France", "Paris"), ("Japan", "Tokyo"), ("Italy", "Rome"), ("Spain", "Madrid"),
            ("Germany", "Berlin"), ("Egypt", "Cairo"), ("Kenya", "Nairobi"), ("Peru", "Lima"),
            ("Norway", "Oslo"), ("Portugal", "Lisbon"), ("Greece", "Athens"), ("Canada", "Ottawa"),
            ("Australia", "Canberra"), ("Poland", "Warsaw"), ("Austria", "Vienna"), ("Finland", "Helsinki")]
SYMBOLS = [("gold", "Au"), ("silver", "Ag"), ("iron", "Fe"), ("sodium", "Na"), ("potassium", "K"),
           ("lead", "Pb"), ("tin", "Sn"), ("copper", "Cu"), ("mercury", "Hg"), ("tungsten", "W")]
FACTS = [
    ("planet-closest-sun", "Which planet is closest to the Sun?", "Mercury"),
    ("largest-planet", "What is the largest planet in the Solar System?", "Jupiter"),
    ("red-planet", "Which planet is known as the Red Planet?", "Mars"),
    ("hexagon-sides", "How many sides does a hexagon have? Write the number in digits.", "6"),
    ("leap-year-days", "How many days are in a leap year? Write the number in digits.", "366"),
    ("minutes-hour", "How many minutes are in one hour? Write the number in digits.", "60"),
    ("smallest-prime", "What is the smallest prime number? Write the number in digits.", "2"),
    ("sqrt-81", "What is the square root of 81? Write the number in digits.", "9"),
    ("water-boils", "At sea level, at how many degrees Celsius does water boil? Write the number in digits.", "100"),
    ("romeo-author", "Who wrote the play Romeo and Juliet? Give the surname only.", "Shakespeare"),
    ("blue-yellow", "Which colour do you get by mixing blue and yellow paint? Give one word.", "Green"),
    ("japan-currency", "What is the currency of Japan called? Give one word.", "Yen"),
    ("brazil-language", "Which language is the official language of Brazil? Give one word.", "Portuguese"),
    ("hot-opposite", "What is the opposite of the word hot? Give one word.", "Cold"),
]


def format_tasks(rng: random.Random) -> list[dict]:
    """Short factual questions whose only difficulty is replying in the exact final-line format."""
    rule = ('Reply with a final line exactly of the form "Answer: <answer>" containing only the answer, '
            "with no extra words.")
    items = [(f"capital-{country.lower()}", f"What is the capital city of {country}?", city, "capital")
             for country, city in CAPITALS]
    items += [(f"symbol-{element}", f"What is the chemical symbol of {element}?", symbol, "chemical symbol")
              for element, symbol in SYMBOLS]
    items += [(slug, question, answer, "fact") for slug, question, answer in FACTS]
    tasks = [{
        "id": f"format-{slug}",
        "prompt": f"{question} {rule}",
        "verifier": {"kind": "exact", "answer": answer},
        "metadata": {"answer": answer, "category": category, "source": SOURCE},
    } for slug, question, answer, category in items]
    return assign_splits(tasks, rng)


# ---------------------------------------------------------------- agent suites (tasks with tools)

def with_tools(tasks: list[dict], suite: str, tools: list[str], max_turns: int = 4) -> list[dict]:
    """A suite's tasks again, renamed to `suite` and given tools: the lesson to learn is to use them."""
    prefix = tasks[0]["id"].split("-", 1)[0] + "-" if tasks else ""
    for task in tasks:
        task["id"] = task["id"].replace(prefix, f"{suite}-", 1)
        task["tools"] = list(tools)
        task["max_turns"] = max_turns
    return tasks


SHOP_BRANDS = ["Millers", "Harvest", "Golden", "Meadow", "Northfield", "Riverside", "Oakwood", "Sunny Vale"]
SHOP_CATEGORIES = {  # category: ((one, several) for the prompt, base ingredients)
    "bread": (("loaf of bread", "loaves of bread"), ["wheat flour", "water", "yeast", "salt"]),
    "biscuits": (("pack of biscuits", "packs of biscuits"), ["wheat flour", "sugar", "sunflower oil"]),
    "cereal": (("box of cereal", "boxes of cereal"), ["oats", "sugar", "salt"]),
    "soup": (("tin of soup", "tins of soup"), ["tomatoes", "onion", "salt"]),
    "chocolate": (("bar of chocolate", "bars of chocolate"), ["cocoa", "sugar", "cocoa butter"]),
    "granola": (("granola bar", "granola bars"), ["oats", "glucose syrup", "raisins"]),
}
ALLERGENS = ["walnuts", "peanuts", "sesame", "soya", "egg"]
ANIMAL = ["milk", "egg", "honey", "butter"]
SIZES = ["250 g", "400 g", "500 g", "750 g", "1 kg"]


def shop_item(category: str, brand: str, ingredients: list[str], size: str, rng: random.Random) -> dict:
    vegan = not any(word in ingredients for word in ANIMAL)
    return {"id": f"{category}-{brand.lower().replace(' ', '-')}", "name": f"{brand} {category}",
            "price": f"{rng.randint(80, 600) / 100:.2f}", "stock": rng.randint(3, 9),
            "details": f"Ingredients: {', '.join(ingredients)}. Pack: {size}. "
                       f"Suitable for vegans: {'yes' if vegan else 'no'}."}


def shop_choice(category: str, rng: random.Random) -> tuple[str, list[dict], int]:
    """(what to buy, the category's items, index of the one item that fits): only inspect tells them apart."""
    base = SHOP_CATEGORIES[category][1]
    brands = rng.sample(SHOP_BRANDS, rng.randint(3, 4))
    target = rng.randrange(len(brands))
    rule = rng.choice(["free", "vegan", "size"])
    items = []
    if rule == "free":
        allergen = rng.choice(ALLERGENS)
        want = f"the one with no {allergen} in it"
        for i, brand in enumerate(brands):
            extra = [] if i == target else [allergen]
            items.append(shop_item(category, brand, base + extra, rng.choice(SIZES), rng))
    elif rule == "vegan":
        want = "the one that is suitable for vegans"
        for i, brand in enumerate(brands):
            extra = [] if i == target else [rng.choice(ANIMAL)]
            items.append(shop_item(category, brand, base + extra, rng.choice(SIZES), rng))
    else:
        sizes = rng.sample(SIZES, len(brands))
        want = f"the one in the {sizes[target]} pack"
        for brand, size in zip(brands, sizes):
            items.append(shop_item(category, brand, base, size, rng))
    return want, items, target


def shop_tasks(rng: random.Random) -> list[dict]:
    """Shopping errands whose right item shows only when inspected: the lesson is to inspect before adding."""
    tasks = []
    for number in range(40):
        category, other = rng.sample(sorted(SHOP_CATEGORIES), 2)
        want, items, target = shop_choice(category, rng)
        distractors = shop_choice(other, rng)[1]
        catalogue = items + distractors
        rng.shuffle(catalogue)
        qty = rng.randint(1, 3)
        chosen = items[target]["id"]
        one, several = SHOP_CATEGORIES[category][0]
        tasks.append({
            "id": f"shop-{number:02d}-{category}",
            "prompt": (f"Buy {qty} {several if qty > 1 else one}, choosing {want}, and nothing else; then check "
                       "out. Use the shop's tools; when the order is placed, say what you bought."),
            "tools": ["shop"],
            "max_turns": 10,
            "verifier": {"kind": "state", "expect": {"shop.cart": {chosen: qty}, "shop.checked_out": True}},
            "metadata": {"answer": {chosen: qty}, "shop": {"items": catalogue}, "source": SOURCE},
        })
    return assign_splits(tasks, rng)


def main() -> None:
    # One generator per suite, so changing one suite never reshuffles the others.
    write_suite("strawberry", strawberry_tasks(random.Random(f"{SEED}-strawberry")))
    write_suite("arithmetic", arithmetic_tasks(random.Random(f"{SEED}-arithmetic")))
    write_suite("game24", game24_tasks(random.Random(f"{SEED}-game24")))
    write_suite("format", format_tasks(random.Random(f"{SEED}-format")))
    # The same questions with tools: spell before counting letters; compute with the exact calc tools.
    write_suite("strawberry-tools", with_tools(strawberry_tasks(random.Random(f"{SEED}-strawberry")),
                                               "strawberry-tools", ["letters.spell"]))
    write_suite("arithmetic-tools", with_tools(arithmetic_tasks(random.Random(f"{SEED}-arithmetic")),
                                               "arithmetic-tools", ["calc"]))
    write_suite("shop", shop_tasks(random.Random(f"{SEED}-shop")))


if __name__ == "__main__":
    main()
