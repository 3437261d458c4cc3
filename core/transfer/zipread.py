"""Reading the members of a zip (an Inspect `.eval` log), including zstd-compressed ones.

Since Inspect 0.3.206 the members of an `.eval` zip are compressed with zstd (zip method 93),
which Python's `zipfile` (before 3.14) cannot decompress. The central directory is still read by
`zipfile`; a zstd member's bytes are read raw and decompressed with `zstandard`, across every
frame (large members are written as several frames), and checked against the stored CRC-32.
"""
from __future__ import annotations

import io
import struct
import zipfile
import zlib

from lessonlab.core.lazy_import import LazyModule
from lessonlab.core.transfer import limits
from lessonlab.core.transfer.errors import MalformedFile

# zstandard takes a quarter of a second to import: only reading a zstd member pays for it.
zstandard = LazyModule("zstandard")

ZIP_ZSTANDARD = 93
_LOCAL_HEADER = struct.Struct("<4s5H3L2H")  # signature ... file name length, extra field length
_LOCAL_SIGNATURE = b"PK\x03\x04"


class ZipMembers:
    """An open zip whose members are read whole (stored, deflate or zstd), every failure a MalformedFile."""

    def __init__(self, path: str):
        self.path = path
        try:
            self._file = open(path, "rb")
        except OSError as exc:
            raise MalformedFile(path, None, f"cannot read the file: {exc.strerror or exc}") from None
        try:
            self._zip = zipfile.ZipFile(self._file)
            self._infos = {info.filename: info for info in self._zip.infolist()}
        except (zipfile.BadZipFile, OSError, EOFError, ValueError) as exc:
            self._file.close()
            raise MalformedFile(path, None, f"not a readable .eval zip, perhaps truncated ({exc})") from None

    def names(self) -> list[str]:
        """Member names in the order they are stored."""
        return list(self._infos)

    def __contains__(self, name: str) -> bool:
        return name in self._infos

    def info(self, name: str) -> zipfile.ZipInfo:
        """The central-directory record of one member."""
        return self._infos[name]

    def read(self, name: str) -> bytes:
        """The uncompressed bytes of one member (CRC-checked)."""
        info = self._infos[name]
        where = f"entry {name}"
        if info.file_size > limits.MAX_MEMBER_BYTES:
            raise MalformedFile(self.path, where, f"inflates to {limits.size_text(info.file_size)}, more than the "
                                f"{limits.size_text(limits.MAX_MEMBER_BYTES)} a sample may hold (a zip bomb?)")
        try:
            if info.compress_type == ZIP_ZSTANDARD:
                data = self._read_zstd(info)
            else:
                data = self._zip.read(info)
        except MalformedFile:
            raise
        except NotImplementedError:
            raise MalformedFile(self.path, where, f"compression method {info.compress_type} is not supported") from None
        except (zipfile.BadZipFile, zlib.error, zstandard.ZstdError, OSError, EOFError, ValueError) as exc:
            raise MalformedFile(self.path, where, f"cannot be decompressed, the file is damaged ({exc})") from None
        return data

    def _read_zstd(self, info: zipfile.ZipInfo) -> bytes:
        where = f"entry {info.filename}"
        self._file.seek(info.header_offset)
        header = self._file.read(_LOCAL_HEADER.size)
        if len(header) < _LOCAL_HEADER.size or header[:4] != _LOCAL_SIGNATURE:
            raise MalformedFile(self.path, where, "its local header is missing, the file is damaged")
        fields = _LOCAL_HEADER.unpack(header)
        name_length, extra_length = fields[-2], fields[-1]
        self._file.seek(info.header_offset + _LOCAL_HEADER.size + name_length + extra_length)
        raw = self._file.read(info.compress_size)
        if len(raw) < info.compress_size:
            raise MalformedFile(self.path, where, "its data is cut short, the file is truncated")
        out = io.BytesIO()
        reader = zstandard.ZstdDecompressor().stream_reader(io.BytesIO(raw), read_across_frames=True)
        with reader:
            while True:
                chunk = reader.read(1 << 20)
                if not chunk:
                    break
                out.write(chunk)
                if out.tell() > info.file_size:  # the frames inflate past the size the zip declares: stop now
                    raise MalformedFile(self.path, where, "it inflates past its declared size, the file is damaged")
        data = out.getvalue()
        if len(data) != info.file_size or zlib.crc32(data) != info.CRC:
            raise MalformedFile(self.path, where, "its content does not match its checksum, the file is damaged")
        return data

    def close(self) -> None:
        """Close the file."""
        self._zip.close()
        self._file.close()

    def __enter__(self) -> "ZipMembers":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
