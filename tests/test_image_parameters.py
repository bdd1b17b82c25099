"""Image parameter checks: each model's size rules, quality, output format,
compression, transparency, `n`, and the inputs of an edit — refused before any
upstream call, each naming the parameter and what to change."""

from __future__ import annotations

import io
import os
import struct
import zlib

import httpx
import pytest
from PIL import Image

from policies.base import PolicyRefused
from policies.image_files import PNG_SIGNATURE
from policies.image_parameters import ImageLimits, ImageParameters
from providers.types import ImageSettings, Surface
from proxy.http.multipart import parse_multipart

from .preflights import preflight

rule = ImageParameters(ImageLimits(max_n=4, max_input_images=3, max_input_bytes=1024 * 1024))


def refusal(**kwargs) -> PolicyRefused:
    with pytest.raises(PolicyRefused) as refused:
        rule.check(preflight(**kwargs))
    assert refused.value.policy == "image_parameters" and refused.value.status == 400
    return refused.value


@pytest.mark.parametrize("size", ["1024x1024", "1536x864", "3840x2160", "auto"])
def test_gpt_image_2_takes_free_form_sizes_within_its_limits(size):
    rule.check(preflight(image=ImageSettings(size=size, quality="low")))


@pytest.mark.parametrize(
    ("size", "said"),
    [
        ("1000x1000", "divisible by 16"),
        ("3840x1024", "aspect ratio"),
        ("4096x2304", "at most 3840"),
        ("big", "Expected WIDTHxHEIGHT"),
    ],
)
def test_gpt_image_2_refuses_a_size_outside_its_rules(size, said):
    error = refusal(image=ImageSettings(size=size))
    assert error.param == "size" and said in error.message and "1024x1024, 1536x1024, 1024x1536" in error.message


def test_earlier_models_take_only_their_fixed_sizes():
    rule.check(preflight(model="gpt-image-1.5", image=ImageSettings(size="1536x1024")))
    error = refusal(model="gpt-image-1.5", image=ImageSettings(size="1536x864"))
    assert error.param == "size" and "Supported sizes are 1024x1024, 1024x1536, 1536x1024" in error.message


def test_the_rules_follow_the_upstream_model_behind_a_route_alias():
    error = refusal(model="pictures", upstream_model="gpt-image-1.5", image=ImageSettings(size="1536x864"))
    assert error.param == "size"


def test_a_model_the_rules_do_not_know_is_checked_only_for_what_all_share():
    """An Azure deployment's own name: its sizes are its own business, compression is not."""
    rule.check(preflight(model="image-deployment", image=ImageSettings(size="1000x1000")))
    assert refusal(model="image-deployment", image=ImageSettings(output_compression=50)).param == "output_compression"


def test_quality_must_be_one_the_model_offers():
    assert refusal(image=ImageSettings(quality="hd")).param == "quality"
    rule.check(preflight(model="gpt-image-2.5-flare", image=ImageSettings(quality="xhigh")))
    assert "xhigh" not in refusal(image=ImageSettings(quality="ultra")).message.split("use one of")[1]


def test_compression_only_with_jpeg_or_webp():
    error = refusal(image=ImageSettings(output_compression=80))
    assert error.param == "output_compression" and "png (the default)" in error.message
    assert refusal(image=ImageSettings(output_format="png", output_compression=80)).param == "output_compression"
    rule.check(preflight(image=ImageSettings(output_format="webp", output_compression=80)))
    rule.check(preflight(image=ImageSettings(output_format="jpeg", output_compression=0)))


def test_an_unknown_output_format_is_refused():
    assert refusal(image=ImageSettings(output_format="gif")).param == "output_format"


def test_transparency_only_where_the_model_renders_it_and_never_as_jpeg():
    error = refusal(image=ImageSettings(background="transparent"))
    assert error.param == "background" and "does not render transparent" in error.message
    rule.check(preflight(model="gpt-image-1.5", image=ImageSettings(background="transparent", output_format="png")))
    error = refusal(model="gpt-image-1.5", image=ImageSettings(background="transparent", output_format="jpeg"))
    assert "jpeg has no transparency" in error.message


def test_n_and_partial_images_within_bounds():
    assert "between 1 and 4" in refusal(image=ImageSettings(n=5)).message
    assert refusal(image=ImageSettings(n=0)).param == "n"
    assert refusal(image=ImageSettings(partial_images=4)).param == "partial_images"


def test_the_responses_image_tool_is_checked_under_its_own_name():
    error = refusal(surface=Surface.RESPONSES, model="gpt-5.4", image=ImageSettings(size="1000x1000"))
    assert error.param == "tools[image_generation].size"


# --- edits ---------------------------------------------------------------------------


def picture(fmt: str = "PNG", size: tuple[int, int] = (64, 64)) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGBA" if fmt == "PNG" else "RGB", size).save(buffer, fmt)
    return buffer.getvalue()


def edit(*files: tuple[str, str, bytes]):
    request = httpx.Request(
        "POST", "http://x/v1/images/edits", data={"model": "gpt-image-2", "prompt": "p"}, files=list(files)
    )
    body = parse_multipart(request.read(), request.headers["content-type"])
    inputs = tuple(file for file in body.files if file.field in ("image", "image[]"))
    mask = next((file for file in body.files if file.field == "mask"), None)
    image = ImageSettings(input_images=len(inputs), inputs=inputs, mask=mask)
    return dict(surface=Surface.IMAGES_EDIT, image=image, body=body)


def test_an_edit_of_pngs_jpegs_and_webps_with_a_matching_mask_passes():
    rule.check(
        preflight(
            **edit(
                ("image[]", ("a.png", picture("PNG"), "image/png")),
                ("image[]", ("b.jpg", picture("JPEG"), "image/jpeg")),
                ("image[]", ("c.webp", picture("WEBP"), "image/webp")),
                ("mask", ("m.png", picture("PNG"), "image/png")),
            )
        )
    )


def test_an_edit_needs_an_image_and_at_most_the_limit():
    assert "at least one image" in refusal(surface=Surface.IMAGES_EDIT, image=ImageSettings()).message
    four = [("image[]", (f"{i}.png", picture(), "image/png")) for i in range(4)]
    assert "at most 3 images" in refusal(**edit(*four)).message


def test_an_input_that_is_not_an_image_is_refused_by_name():
    error = refusal(**edit(("image", ("notes.txt", b"hello, not a picture", "text/plain"))))
    assert error.param == "image" and "`image` file 'notes.txt' is not a PNG, JPEG or WebP" in error.message


def test_an_input_over_the_size_limit_is_refused():
    noisy = Image.frombytes("RGB", (700, 700), os.urandom(700 * 700 * 3))
    buffer = io.BytesIO()
    noisy.save(buffer, "PNG")
    assert len(buffer.getvalue()) > 1024 * 1024
    error = refusal(**edit(("image", ("big.png", buffer.getvalue(), "image/png"))))
    assert "'big.png' is 1.4 MB; each input may be at most 1 MB" in error.message


def test_the_mask_must_be_a_png_of_the_images_size():
    error = refusal(
        **edit(("image", ("a.png", picture(), "image/png")), ("mask", ("m.jpg", picture("JPEG"), "image/jpeg")))
    )
    assert error.param == "mask" and "must be a PNG" in error.message
    error = refusal(
        **edit(("image", ("a.png", picture(), "image/png")), ("mask", ("m.png", picture(size=(32, 32)), "image/png")))
    )
    assert "The `mask` is 32x32 but the first image is 64x64" in error.message


# --- edit inputs read to their end ---------------------------------------------------------


def png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def claimed_png(width: int, height: int) -> bytes:
    """A PNG whose header claims `width`x`height` RGBA over a few rows of real data: no
    pixel buffer of that size is ever made, here or in the rule."""
    header = struct.pack(">IIBBBBB", width, height, 8, 6, 0, 0, 0)
    rows = zlib.compress(b"\0" * 4096)
    return PNG_SIGNATURE + png_chunk(b"IHDR", header) + png_chunk(b"IDAT", rows) + png_chunk(b"IEND", b"")


def only_image(data: bytes, field: str = "image") -> PolicyRefused:
    files = [("image", ("a.png", picture(size=(64, 64)), "image/png"))] if field == "mask" else []
    return refusal(**edit(*files, (field, ("x.png", data, "image/png"))))


@pytest.mark.parametrize(
    ("damage", "said"),
    [
        (lambda png: png[: len(png) // 2], "is truncated"),
        (lambda png: png[:-12], "ends before the PNG's closing IEND chunk"),
        (lambda png: PNG_SIGNATURE + os.urandom(len(png) - 8), "its header cannot be read"),
        (lambda png: png[:-17] + bytes([png[-17] ^ 0xFF]) + png[-16:], "'IDAT' chunk fails its checksum"),
    ],
    ids=["half", "no-iend", "garbage-after-signature", "flipped-byte"],
)
@pytest.mark.parametrize("field", ["image", "mask"])
def test_a_damaged_png_is_refused_naming_its_field(damage, said, field):
    whole = picture(size=(64, 64))
    error = only_image(damage(whole), field)
    assert error.param == field and said in error.message
    assert f"`{field}` file 'x.png'" in error.message


def test_a_png_claiming_more_pixels_than_the_limit_is_refused_before_any_decoding():
    error = only_image(claimed_png(100_000, 100_000))
    assert error.param == "image"
    assert "claims 100000x100000 pixels (10,000.0 megapixels); inputs may have at most 50 megapixels" in error.message


def test_a_png_whose_data_is_short_of_its_claimed_size_is_refused():
    error = only_image(claimed_png(2000, 2000))  # within the limit, but 4 KB of rows for 16 MB
    assert error.param == "image" and "its image data holds 4096 of the 16002000 bytes its size needs" in error.message


def test_an_interlaced_png_and_a_palette_mask_with_transparency_pass():
    interlaced = io.BytesIO()
    Image.frombytes("RGB", (50, 30), os.urandom(50 * 30 * 3)).save(interlaced, "PNG", interlace=1)
    palette = io.BytesIO()
    Image.new("P", (50, 30)).save(palette, "PNG", transparency=0)
    rule.check(
        preflight(
            **edit(
                ("image", ("a.png", interlaced.getvalue(), "image/png")),
                ("mask", ("m.png", palette.getvalue(), "image/png")),
            )
        )
    )


@pytest.mark.parametrize(("fmt", "field"), [("JPEG", "image"), ("WEBP", "image[]")])
def test_a_truncated_jpeg_or_webp_is_refused(fmt, field):
    noisy = io.BytesIO()
    Image.frombytes("RGB", (256, 256), os.urandom(256 * 256 * 3)).save(noisy, fmt)
    data = noisy.getvalue()
    error = refusal(**edit((field, ("half", data[: len(data) // 2], "application/octet-stream"))))
    assert error.param == field and "`" + field + "` file 'half'" in error.message


def test_a_mask_without_an_alpha_channel_is_refused():
    error = only_image(opaque_png(64, 64), "mask")
    assert error.param == "mask" and "PNG with an alpha channel" in error.message


def opaque_png(width: int, height: int) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (width, height)).save(buffer, "PNG")
    return buffer.getvalue()
