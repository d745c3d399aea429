"""Writing an output document from its source file: every page equal to its source page when both are
rendered or decoded, the encoded data copied (not rendered again), order kept, whole files byte for
byte, and a named error for each kind of bad input."""

from __future__ import annotations

import io
import re
from pathlib import Path

import numpy as np
import pikepdf
import pypdfium2 as pdfium
import pytest
import tifffile
from PIL import Image, ImageDraw

from worker.document_file import DocumentFileError, document_suffix, write_document

PDF_SCALE = 0.5  # every PDF page rendered at 36 dpi, source and copy alike
TIFF_KINDS = {"g4": ("group4", 4), "lzw": ("tiff_lzw", 5), "jpeg": ("jpeg", 7)}


def _picture(seed: int, size: tuple[int, int]) -> Image.Image:
    """A page of its own: noise, a band and a box at places that depend on ``seed``."""
    rng = np.random.default_rng(seed)
    w, h = size
    img = Image.fromarray(rng.integers(150, 256, (h, w, 3), dtype=np.uint8))
    draw = ImageDraw.Draw(img)
    draw.rectangle((w * seed // 8, h // 6, w * seed // 8 + w // 4, h // 2), fill=(20, 30 * seed, 90))
    draw.line((0, h * seed // 7, w, h - h * seed // 7), fill=(0, 0, 0), width=5)
    return img


def _jpeg(img: Image.Image) -> bytes:
    buf = io.BytesIO()
    img.save(buf, "JPEG", quality=85)
    return buf.getvalue()


def _image_page(pdf: pikepdf.Pdf, img: Image.Image, box: tuple[int, int]) -> pikepdf.Dictionary:
    """A page showing a JPEG (DCT) image over its whole media box of ``box`` points."""
    w, h = img.size
    image = pikepdf.Stream(pdf, _jpeg(img))
    image.Type, image.Subtype, image.Filter = pikepdf.Name.XObject, pikepdf.Name.Image, pikepdf.Name.DCTDecode
    image.Width, image.Height, image.BitsPerComponent = w, h, 8
    image.ColorSpace = pikepdf.Name.DeviceRGB
    content = pikepdf.Stream(pdf, f"q {box[0]} 0 0 {box[1]} 0 0 cm /Im0 Do Q".encode())
    return pikepdf.Dictionary(
        Type=pikepdf.Name.Page,
        MediaBox=[0, 0, *box],
        Contents=content,
        Resources=pikepdf.Dictionary(XObject=pikepdf.Dictionary(Im0=image)),
    )


def _text_page(pdf: pikepdf.Pdf) -> pikepdf.Dictionary:
    """A page of vector drawing and text in a standard font; its rotation and media box inherited
    from the page tree."""
    content = b"0.2 0.4 0.8 rg 20 20 150 80 re f BT /F1 24 Tf 30 150 Td (Contract, page 3) Tj ET"
    font = pikepdf.Dictionary(
        Type=pikepdf.Name.Font, Subtype=pikepdf.Name.Type1, BaseFont=pikepdf.Name.Helvetica
    )
    return pikepdf.Dictionary(
        Type=pikepdf.Name.Page,
        Contents=pikepdf.Stream(pdf, content),
        Resources=pikepdf.Dictionary(Font=pikepdf.Dictionary(F1=font)),
    )


@pytest.fixture
def pdf_file(tmp_path: Path) -> Path:
    """Five pages of different sizes and content: JPEG images (page 2 rotated by 90 degrees on the
    page, page 4 landscape), a text page whose box and rotation (270) it inherits, a repeat of page 1's
    size with other content."""
    pdf = pikepdf.new()
    pages = [
        _image_page(pdf, _picture(1, (300, 420)), (300, 420)),
        _image_page(pdf, _picture(2, (300, 420)), (300, 420)),
        _text_page(pdf),
        _image_page(pdf, _picture(4, (480, 320)), (480, 320)),
        _image_page(pdf, _picture(5, (200, 280)), (300, 420)),
    ]
    pages[1].Rotate = 90
    for page in pages:
        pdf.pages.append(pikepdf.Page(page))
    pdf.Root.Pages.MediaBox = [0, 0, 250, 250]
    pdf.Root.Pages.Rotate = 270
    path = tmp_path / "stack.pdf"
    pdf.save(path)
    return path


def _frames(kind: str, n: int = 4) -> list[Image.Image]:
    pictures = [_picture(seed, (240 + 16 * seed, 300)) for seed in range(1, n + 1)]
    return [p.convert("1") for p in pictures] if kind == "g4" else pictures


@pytest.fixture(params=sorted(TIFF_KINDS))
def tiff_file(request: pytest.FixtureRequest, tmp_path: Path) -> Path:
    """Four frames of different sizes and content, in G4, LZW or JPEG, at 300 dpi."""
    frames = _frames(request.param)
    path = tmp_path / f"stack-{request.param}.tif"
    compression = TIFF_KINDS[request.param][0]
    frames[0].save(path, save_all=True, append_images=frames[1:], compression=compression, dpi=(300, 300))
    return path


def _render_pdf(path: Path) -> list[np.ndarray]:
    pdf = pdfium.PdfDocument(str(path))
    try:
        return [pdf[i].render(scale=PDF_SCALE).to_numpy().copy() for i in range(len(pdf))]
    finally:
        pdf.close()


def _decode_tiff(path: Path) -> list[np.ndarray]:
    with Image.open(path) as img:
        frames = []
        for index in range(img.n_frames):
            img.seek(index)
            frames.append(np.asarray(img.convert("RGB")).copy())
        return frames


def _segments(path: Path) -> list[list[bytes]]:
    """Each frame's encoded strips or tiles, as they lie in the file."""
    data = path.read_bytes()
    with tifffile.TiffFile(path) as tif:
        return [
            [data[o : o + n] for o, n in zip(p.dataoffsets, p.databytecounts, strict=True)] for p in tif.pages
        ]


def _assert_same_pages(source: list[np.ndarray], written: list[np.ndarray], pages: list[int]) -> None:
    assert len(written) == len(pages)
    for made, number in zip(written, pages, strict=True):
        assert made.shape == source[number - 1].shape, f"page {number}"
        assert np.array_equal(made, source[number - 1]), f"page {number} differs from its source page"


def test_pdf_document_pages_render_equal_to_their_source_pages(pdf_file: Path, tmp_path: Path) -> None:
    pages = [2, 3, 5]
    target = write_document(pdf_file, pages, tmp_path / "doc.pdf", page_count=5)
    source = _render_pdf(pdf_file)
    assert len({page.tobytes() for page in source}) == 5  # the pages differ, so order is checked too
    _assert_same_pages(source, _render_pdf(target), pages)


def test_pdf_document_copies_page_objects_with_boxes_rotation_and_image_streams(
    pdf_file: Path, tmp_path: Path
) -> None:
    target = write_document(pdf_file, [4, 3, 2], tmp_path / "doc.pdf", page_count=5)
    with pikepdf.open(pdf_file) as src, pikepdf.open(target) as out:
        assert len(out.pages) == 3
        for made, number in zip(out.pages, [4, 3, 2], strict=True):
            original = src.pages[number - 1]
            assert list(made.mediabox) == list(original.mediabox)
            assert int(made.obj.get("/Rotate", 0)) == int(original.obj.get("/Rotate", 0))
        assert int(out.pages[1].obj.Rotate) == 270  # inherited from the source's page tree
        assert int(out.pages[2].obj.Rotate) == 90
        for made, number in ((out.pages[0], 4), (out.pages[2], 2)):
            image = made.Resources.XObject.Im0
            assert image.Filter == pikepdf.Name.DCTDecode
            assert image.read_raw_bytes() == src.pages[number - 1].Resources.XObject.Im0.read_raw_bytes()
        images = [o for o in out.objects if isinstance(o, pikepdf.Stream) and o.get("/Subtype") == "/Image"]
        assert len(images) == 2  # the pages left out took their images with them


def test_tiff_document_keeps_frames_compression_resolution_and_encoded_bytes(
    tiff_file: Path, tmp_path: Path
) -> None:
    pages = [4, 1, 3]
    target = write_document(tiff_file, pages, tmp_path / "doc.tif", page_count=4)
    source = _decode_tiff(tiff_file)
    assert len({frame.tobytes() for frame in source}) == 4
    _assert_same_pages(source, _decode_tiff(target), pages)
    expected = TIFF_KINDS[tiff_file.stem.removeprefix("stack-")][1]
    with tifffile.TiffFile(target) as tif:
        assert [int(p.compression) for p in tif.pages] == [expected] * 3
        for page in tif.pages:
            assert page.tags["XResolution"].value == (300, 1)
            assert page.tags["YResolution"].value == (300, 1)
    original = _segments(tiff_file)
    assert _segments(target) == [original[n - 1] for n in pages]


def test_g4_frames_stay_g4_with_their_fax_options(tmp_path: Path) -> None:
    frames = _frames("g4", 3)
    source = tmp_path / "fax.tif"
    frames[0].save(source, save_all=True, append_images=frames[1:], compression="group4", dpi=(200, 200))
    target = write_document(source, [2], tmp_path / "doc.tif", page_count=3)
    with tifffile.TiffFile(source) as src, tifffile.TiffFile(target) as out:
        assert len(out.pages) == 1
        made, original = out.pages[0], src.pages[1]
        assert int(made.compression) == 4 and made.bitspersample == 1
        kept = {code for code in original.tags.keys() if code not in (273, 279)}  # noqa: SIM118
        assert kept <= set(made.tags.keys())
        for code in kept:
            assert made.tags[code].value == original.tags[code].value, f"tag {code}"


@pytest.mark.parametrize("kind", ["pdf", "tiff", "jpeg"])
def test_whole_file_document_is_the_file_byte_for_byte(kind: str, pdf_file: Path, tmp_path: Path) -> None:
    if kind == "pdf":
        source, count = pdf_file, 5
    elif kind == "tiff":
        source, count = tmp_path / "scan.tiff", 3
        frames = _frames("lzw", 3)
        frames[0].save(source, save_all=True, append_images=frames[1:], compression="tiff_lzw")
    else:
        source, count = tmp_path / "photo.JPEG", 1
        source.write_bytes(_jpeg(_picture(3, (200, 150))))
    pages = list(range(1, count + 1))
    suffix = document_suffix(source, pages, count)
    assert suffix == source.suffix.lower()
    target = write_document(source, pages, tmp_path / "out" / f"doc{suffix}", page_count=count)
    assert target.read_bytes() == source.read_bytes()


def test_suffix_follows_the_format_written(pdf_file: Path, tiff_file: Path, tmp_path: Path) -> None:
    assert document_suffix(pdf_file, [1, 2], 5) == ".pdf"
    assert document_suffix(tiff_file, [2], 4) == ".tif"
    assert document_suffix(tiff_file, [1, 2, 3, 4], 4) == ".tif"
    anonymous = tmp_path / "scan"
    anonymous.write_bytes(pdf_file.read_bytes())
    assert document_suffix(anonymous, [1, 2, 3, 4, 5], 5) == ".pdf"


def test_frames_of_an_animated_gif_become_a_lossless_tiff(tmp_path: Path) -> None:
    frames = [_picture(seed, (160, 120)).quantize(64) for seed in range(1, 4)]
    source = tmp_path / "frames.gif"
    frames[0].save(source, save_all=True, append_images=frames[1:], duration=100, disposal=1)
    assert document_suffix(source, [3, 1], 3) == ".tif"
    target = write_document(source, [3, 1], tmp_path / "doc.tif", page_count=3)
    with Image.open(source) as img:
        decoded = []
        for index in range(3):
            img.seek(index)
            decoded.append(np.asarray(img.convert("RGB")).copy())
    _assert_same_pages(decoded, _decode_tiff(target), [3, 1])
    with tifffile.TiffFile(target) as tif:
        assert {int(p.compression) for p in tif.pages} == {8}  # Deflate


@pytest.mark.parametrize(
    ("pages", "reason"),
    [
        ([], "no pages"),
        ([0], "page 0 is out of range (the file has pages 1 to 4)"),
        ([2, 5], "page 5 is out of range"),
        ([1, 3, 1], "page 1 is listed twice"),
    ],
)
def test_bad_page_lists_are_refused_naming_the_file(
    tiff_file: Path, tmp_path: Path, pages: list[int], reason: str
) -> None:
    with pytest.raises(DocumentFileError, match=re.escape(reason)) as err:
        write_document(tiff_file, pages, tmp_path / "doc.tif", page_count=4)
    assert err.value.path == str(tiff_file) and str(tiff_file) in str(err.value)
    assert not list(tmp_path.glob("*doc.tif*"))


def test_unreadable_sources_are_refused_with_their_reason(pdf_file: Path, tmp_path: Path) -> None:
    garbage = tmp_path / "notes.pdf"
    garbage.write_bytes(b"this is not a scan at all\n" * 10)
    truncated = tmp_path / "cut.pdf"
    data = pdf_file.read_bytes()
    truncated.write_bytes(data[: len(data) // 2])
    fake_tiff = tmp_path / "broken.tif"
    fake_tiff.write_bytes(b"II*\x00" + b"\xff" * 60)
    cases = [
        (garbage, "unsupported file type"),
        (tmp_path / "gone.pdf", "file not found"),
        (truncated, "damaged PDF"),
        (fake_tiff, "TIFF"),
    ]
    for source, reason in cases:
        with pytest.raises(DocumentFileError, match=reason) as err:
            write_document(source, [2], tmp_path / "out" / "doc.pdf", page_count=5)
        assert err.value.path == str(source), source
    assert not (tmp_path / "out").exists() or not list((tmp_path / "out").iterdir())


def test_a_source_with_other_pages_than_counted_is_refused(
    pdf_file: Path, tiff_file: Path, tmp_path: Path
) -> None:
    with pytest.raises(DocumentFileError, match="the file has 5 pages, not the 6 counted"):
        write_document(pdf_file, [1, 2], tmp_path / "doc.pdf", page_count=6)
    with pytest.raises(DocumentFileError, match="the file has 4 pages, not the 3 counted"):
        write_document(tiff_file, [1], tmp_path / "doc.tif", page_count=3)


def test_a_target_that_cannot_be_written_is_named(pdf_file: Path, tmp_path: Path) -> None:
    (tmp_path / "blocked").write_text("a file where the folder should be")
    target = tmp_path / "blocked" / "doc.pdf"
    with pytest.raises(DocumentFileError, match="cannot be written") as err:
        write_document(pdf_file, [1], target, page_count=5)
    assert str(tmp_path / "blocked") in err.value.path
