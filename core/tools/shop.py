"""The `shop` tool set: a small shop whose catalogue comes from the task's `metadata.shop.items`.

Stateful, and the order of actions matters: an item's details (what it contains, its size) show only when
it is inspected, the cart is limited by stock, and after `checkout` nothing can change. The state is plain
JSON (catalogue, cart, inspected items, checked_out, total), which the `state` verifier checks.
"""
from __future__ import annotations

import re
from decimal import Decimal
from typing import Any

from lessonlab.core.tools.registry import ToolError, ToolSet, ToolSpecError, register, tool

_PRICE_RE = re.compile(r"^\d{1,7}(?:\.\d{1,2})?$")
MAX_ITEMS = 200


def _item(state: dict, item: str) -> dict:
    found = next((entry for entry in state["catalogue"] if entry["id"] == item), None)
    if found is None:
        raise ToolError(f"there is no item {item!r}; list_items shows the item ids")
    return found


def _money(value: Decimal) -> str:
    return f"{value.quantize(Decimal('0.01'))}"


def _cart_text(state: dict) -> str:
    if not state["cart"]:
        return "The cart is empty."
    lines, total = [], Decimal(0)
    for item_id, qty in state["cart"].items():
        cost = Decimal(_item(state, item_id)["price"]) * qty
        total += cost
        lines.append(f"{qty} x {item_id} = {_money(cost)}")
    return "Cart:\n" + "\n".join(lines) + f"\nTotal: {_money(total)}"


def _open(state: dict) -> None:
    if state["checked_out"]:
        raise ToolError("the order is already checked out; nothing can change now")


def list_items(state: dict) -> tuple[str, dict]:
    """List the shop's items: one line per item with its id, name and price.

    Details and stock are not shown here; inspect an item to see them.
    """
    lines = [f"{entry['id']}: {entry['name']}, {_money(Decimal(entry['price']))}" for entry in state["catalogue"]]
    return "\n".join(lines), state


def inspect(state: dict, item: str) -> tuple[str, dict]:
    """Inspect one item by its id: its details (ingredients, size, notes), price and how many are in stock."""
    entry = _item(state, item)
    inspected = state["inspected"] if item in state["inspected"] else [*state["inspected"], item]
    text = (f"{entry['id']}: {entry['name']}, {_money(Decimal(entry['price']))}, {entry['stock']} in stock.\n"
            f"{entry.get('details') or 'No further details.'}")
    return text, {**state, "inspected": inspected}


def add_to_cart(state: dict, item: str, qty: int) -> tuple[str, dict]:
    """Add qty of an item (by its id) to the cart. Fails when fewer are in stock or the order is checked out."""
    _open(state)
    entry = _item(state, item)
    if qty < 1:
        raise ToolError("qty must be at least 1")
    wanted = state["cart"].get(item, 0) + qty
    if wanted > entry["stock"]:
        raise ToolError(f"only {entry['stock']} of {item} in stock (the cart would hold {wanted})")
    return f"Added {qty} x {item}.\n" + _cart_text({**state, "cart": {**state["cart"], item: wanted}}), \
        {**state, "cart": {**state["cart"], item: wanted}}


def remove_from_cart(state: dict, item: str) -> tuple[str, dict]:
    """Remove an item (by its id) from the cart entirely."""
    _open(state)
    if item not in state["cart"]:
        raise ToolError(f"{item!r} is not in the cart")
    cart = {k: v for k, v in state["cart"].items() if k != item}
    new_state = {**state, "cart": cart}
    return f"Removed {item}.\n" + _cart_text(new_state), new_state


def view_cart(state: dict) -> tuple[str, dict]:
    """Show the cart: each item with its quantity and cost, and the total."""
    return _cart_text(state), state


def checkout(state: dict) -> tuple[str, dict]:
    """Place the order for everything in the cart. Final: after checkout the cart cannot change."""
    _open(state)
    if not state["cart"]:
        raise ToolError("the cart is empty; add items before checking out")
    total = sum((Decimal(_item(state, k)["price"]) * v for k, v in state["cart"].items()), Decimal(0))
    return f"Order placed. {_cart_text(state)}", {**state, "checked_out": True, "total": _money(total)}


def check_metadata(metadata: dict) -> None:
    """ToolSpecError unless metadata.shop.items is a usable catalogue."""
    shop = metadata.get("shop")
    items = shop.get("items") if isinstance(shop, dict) else None
    if not isinstance(items, list) or not items or len(items) > MAX_ITEMS:
        raise ToolSpecError(f'the shop tool set needs "metadata": {{"shop": {{"items": [...]}}}} with 1 to {MAX_ITEMS} '
                            'items, each {"id", "name", "price", "stock", "details"?}')
    seen = set()
    for index, entry in enumerate(items):
        where = f"metadata.shop.items[{index}]"
        if not isinstance(entry, dict):
            raise ToolSpecError(f"{where} must be an object")
        if not isinstance(entry.get("id"), str) or not entry["id"] or entry["id"] in seen:
            raise ToolSpecError(f'{where}: "id" must be a non-empty string used once')
        seen.add(entry["id"])
        if not isinstance(entry.get("name"), str):
            raise ToolSpecError(f'{where}: "name" must be a string')
        if not isinstance(entry.get("price"), str) or not _PRICE_RE.match(entry["price"]):
            raise ToolSpecError(f'{where}: "price" must be a decimal string such as "2.40"')
        stock = entry.get("stock")
        if isinstance(stock, bool) or not isinstance(stock, int) or stock < 0:
            raise ToolSpecError(f'{where}: "stock" must be an integer of 0 or more')
        if not isinstance(entry.get("details", ""), str):
            raise ToolSpecError(f'{where}: "details" must be a string')
        unknown = sorted(set(entry) - {"id", "name", "price", "stock", "details"})
        if unknown:
            raise ToolSpecError(f"{where}: unknown field(s) {', '.join(unknown)}")


def initial_state(metadata: dict) -> dict[str, Any]:
    """The shop as the task starts it: the catalogue, an empty cart, nothing inspected, not checked out."""
    return {"catalogue": metadata["shop"]["items"], "cart": {}, "inspected": [], "checked_out": False, "total": None}


_ITEM = ("string", "the item's id, as list_items shows it")
SHOP = ToolSet("shop", (
    tool(list_items, stateful=True),
    tool(inspect, {"item": _ITEM}, stateful=True),
    tool(add_to_cart, {"item": _ITEM, "qty": ("integer", "how many to add, at least 1")}, stateful=True),
    tool(remove_from_cart, {"item": _ITEM}, stateful=True),
    tool(view_cart, stateful=True),
    tool(checkout, stateful=True),
), initial_state=initial_state, check_metadata=check_metadata)
register(SHOP)
