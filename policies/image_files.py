"""Reading an uploaded image far enough to know it is a whole image of the size it
claims, without ever holding its pixels.

The header gives the format and the size, and the size is checked against the
limit before anything is decoded, so a small file claiming 100000x100000 pixels
costs nothing. Then each format is read to its end in the cheapest way that proves
it whole:

- PNG: every chunk to IEND with its CRC, and the image data inflated as a stream
  (output counted and dropped) to exactly the bytes its size and colour type need.
- JPEG: decoded at 1/8 scale, which still reads every entropy-coded segment, so a
  truncated file fails, in 1/64 of the memory.
- WebP: every RIFF chunk present in full, one of them the image's bitstream.
  (libwebp, through Pillow, decodes only at full size.)
"""

from __future__ import annotations

import functools
import io
import struct
import zlib
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from PIL import ImageFile

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
JPEG_SIGNATURE = b"\xff\xd8\xff"
# What Pillow raises on bytes it cannot parse (Image.open catches the first four).
_UNREADABLE = (SyntaxError, IndexError, TypeError, struct.error, ValueError, OSError, EOFError)
_INFLATE_STEP = 1 << 18  # bytes of pixel rows inflated at a time, then dropped
_PNG_CHANNELS = {0: 1, 2: 3, 3: 1, 4: 2, 6: 4}  # by colour type
_ADAM7 = ((0, 0, 8, 8), (4, 0, 8, 8), (0, 4, 4, 8), (2, 0, 4, 4), (0, 2, 2, 4), (1, 0, 2, 2), (0, 1, 1, 2))


class BadImage(ValueError):
    """The file is not a whole image within the limits; the message says what is wrong."""


@dataclass(frozen=True, slots=True)
class ImageFacts:
    format: str  # png, jpeg or webp
    width: int
    height: int
    has_alpha: bool


def image_format(data: bytes) -> str | None:
    """png, jpeg or webp by the file's signature; None for anything else."""
    if data.startswith(PNG_SIGNATURE):
        return "png"
    if data.startswith(JPEG_SIGNATURE):
        return "jpeg"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "webp"
    return None


def image_size(data: bytes) -> tuple[int, int] | None:
    """Width and height from the header alone; None when it cannot be read."""
    kind = image_format(data)
    if kind is None:
        return None
    try:
        with _open(kind, data) as image:
            width, height = image.size
    except _UNREADABLE:
        return None
    return (width, height) if width > 0 and height > 0 else None


def inspect_image(data: bytes, *, max_pixels: int) -> ImageFacts:
    kind = image_format(data)
    if kind is None:
        raise BadImage("is not a PNG, JPEG or WebP image")
    try:
        image = _open(kind, data)
    except _UNREADABLE:
        raise BadImage(f"starts like a {kind.upper()} but its header cannot be read; it is damaged") from None
    with image:
        width, height = image.size
        if width < 1 or height < 1:
            raise BadImage(f"claims a size of {width}x{height} pixels")
        if width * height > max_pixels:
            raise BadImage(
                f"claims {width}x{height} pixels ({width * height / 1e6:,.1f} megapixels); "
                f"inputs may have at most {max_pixels / 1e6:g} megapixels"
            )
        if kind == "png":
            _check_png(data, width, height)
        elif kind == "jpeg":
            _check_jpeg(image)
        else:
            _check_webp(data)
        # A PNG's tRNS chunk comes before its image data, so the header read has seen it.
        return ImageFacts(kind, width, height, has_alpha="A" in image.mode or "transparency" in image.info)


def _open(kind: str, data: bytes) -> ImageFile.ImageFile:
    """The plugin's own class reads the header only, and skips Pillow's process-wide
    decompression-bomb check (a warning, or an error past twice its limit): the limit
    that applies is the caller's."""
    return _openers()[kind](io.BytesIO(data))


@functools.cache
def _openers() -> dict[str, type[ImageFile.ImageFile]]:
    """Pillow is imported when the first image is inspected, not at every start-up."""
    from PIL import JpegImagePlugin, PngImagePlugin, WebPImagePlugin

    return {
        "png": PngImagePlugin.PngImageFile,
        "jpeg": JpegImagePlugin.JpegImageFile,
        "webp": WebPImagePlugin.WebPImageFile,
    }


# --- PNG ---------------------------------------------------------------------------------


def _check_png(data: bytes, width: int, height: int) -> None:
    position = len(PNG_SIGNATURE)
    inflater = zlib.decompressobj()
    expected = inflated = 0
    seen_data = data_ended = False
    while True:
        if position + 8 > len(data):
            raise BadImage("is truncated: it ends before the PNG's closing IEND chunk")
        length, kind = struct.unpack(">I4s", data[position : position + 8])
        end = position + 8 + length
        if end + 4 > len(data):
            raise BadImage(f"is truncated: its {kind.decode('latin-1')!r} chunk runs past the end of the file")
        chunk = data[position + 8 : end]
        (crc,) = struct.unpack(">I", data[end : end + 4])
        if zlib.crc32(kind + chunk) != crc:
            raise BadImage(f"is damaged: its {kind.decode('latin-1')!r} chunk fails its checksum")
        if kind == b"IHDR":
            expected = _png_data_size(chunk, width, height)
        elif kind == b"IDAT":
            if data_ended:
                raise BadImage("is damaged: its image data is split by other chunks")
            seen_data = True
            inflated += _inflate(inflater, chunk, expected - inflated)
        elif seen_data:
            data_ended = True
        if kind == b"IEND":
            break
        position = end + 4
    if not inflater.eof or inflated != expected:
        raise BadImage(f"is damaged: its image data holds {inflated} of the {expected} bytes its size needs")


def _png_data_size(header: bytes, width: int, height: int) -> int:
    """Bytes of filtered rows (a filter byte per row) a PNG of this header inflates to."""
    bit_depth, colour_type, _, _, interlace = struct.unpack(">5B", header[8:13])
    bits = bit_depth * _PNG_CHANNELS.get(colour_type, 4)
    if interlace != 1:
        return height * ((width * bits + 7) // 8 + 1)
    total = 0
    for x0, y0, dx, dy in _ADAM7:
        columns, rows = (width - x0 + dx - 1) // dx, (height - y0 + dy - 1) // dy
        if columns and rows:
            total += rows * ((columns * bits + 7) // 8 + 1)
    return total


def _inflate(inflater: zlib._Decompress, chunk: bytes, room: int) -> int:
    """Inflates one IDAT chunk a step at a time, keeping nothing; the bytes it made."""
    made = 0
    pending = chunk
    while pending:
        try:
            out = inflater.decompress(pending, _INFLATE_STEP)
        except zlib.error:
            raise BadImage("is damaged: its image data is not a valid compressed stream") from None
        made += len(out)
        if made > room:
            raise BadImage("is damaged: its image data holds more bytes than its size needs")
        pending = inflater.unconsumed_tail
        if inflater.eof:
            break
    return made


# --- JPEG and WebP -----------------------------------------------------------------------


def _check_jpeg(image: ImageFile.ImageFile) -> None:
    width, height = image.size
    image.draft(None, (max(1, width // 8), max(1, height // 8)))
    try:
        image.load()
    except _UNREADABLE:
        raise BadImage("is truncated or damaged: its JPEG data cannot be decoded to the end") from None


_WEBP_BITSTREAMS = (b"VP8 ", b"VP8L", b"ANMF")


def _check_webp(data: bytes) -> None:
    (declared,) = struct.unpack("<I", data[4:8])
    if 8 + declared > len(data):
        raise BadImage(f"is truncated: its RIFF header declares {8 + declared} bytes, the file has {len(data)}")
    position, end = 12, 8 + declared
    kinds: list[bytes] = []
    while position < end:
        if position + 8 > end:
            raise BadImage("is damaged: a WebP chunk header runs past the end of the image")
        kind, length = data[position : position + 4], struct.unpack("<I", data[position + 4 : position + 8])[0]
        position += 8 + length + (length & 1)  # chunks are padded to an even length
        if position > end + (length & 1):
            raise BadImage(f"is truncated: its {kind.decode('latin-1')!r} chunk runs past the end of the image")
        kinds.append(kind)
    if not any(kind in _WEBP_BITSTREAMS for kind in kinds):
        raise BadImage("is damaged: it has no WebP image data")
