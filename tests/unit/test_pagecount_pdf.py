from agent.pagecount import count_job
from agent.pagecount.pdf import count
from tests import sample_documents as docs


def test_counts_pages_colour_pages_and_a4_from_the_media_box(tmp_path):
    facts = count(str(docs.pdf(tmp_path / "doc.pdf", 5, colour_pages=(1, 3))))
    assert (facts.format, facts.pages, facts.colour_pages, facts.colour_known) == ("pdf", 5, 2, True)
    assert facts.paper_size == "A4"


def test_letter_media_box_is_named_letter_in_either_orientation(tmp_path):
    assert count(str(docs.pdf(tmp_path / "p.pdf", 1, size=(612, 792)))).paper_size == "Letter"
    assert count(str(docs.pdf(tmp_path / "l.pdf", 1, size=(792, 612)))).paper_size == "Letter"


def test_grey_rgb_values_are_not_colour(tmp_path):
    assert count(str(docs.pdf(tmp_path / "g.pdf", 3))).colour_pages == 0


def test_damaged_pdf_falls_back_to_counting_page_objects(tmp_path):
    path = tmp_path / "broken.pdf"
    path.write_bytes(b"%PDF-1.4\n1 0 obj << /Type /Pages /Count 2 >> endobj\n"
                     b"2 0 obj << /Type /Page >> endobj\n3 0 obj << /Type/Page >> endobj\n")
    assert count(str(path)).pages == 2


def test_pdf_with_junk_before_the_header_is_still_a_pdf(tmp_path):
    source = docs.pdf(tmp_path / "doc.pdf", 2)
    path = tmp_path / "junk"
    path.write_bytes(b"\x1b%-12345X@PJL ENTER LANGUAGE=PDF\r\n" + source.read_bytes())
    job = count_job(str(path))
    assert (job.format, job.pages) == ("pdf", 2)


def test_images_and_shadings_are_colour_pages_when_their_pixels_are_colour(tmp_path):
    """An image in an RGB space whose pixels are grey prints grey (Ghostscript renders it to tell)."""
    from pypdf import PdfWriter
    from pypdf.generic import (ArrayObject, DecodedStreamObject, DictionaryObject, FloatObject, NameObject,
                               NumberObject, StreamObject)

    writer = PdfWriter()
    for kind in ("grey-image", "rgb-image", "rgb-grey-image", "rgb-shading"):
        page = writer.add_blank_page(595, 842)
        resources = DictionaryObject()
        if kind.endswith("image"):
            image = StreamObject()
            image._data = {"rgb-image": b"\xff\x00\x00" * 4, "rgb-grey-image": b"\x80\x80\x80" * 4}.get(kind, bytes(4))
            image.update({NameObject("/Type"): NameObject("/XObject"), NameObject("/Subtype"): NameObject("/Image"),
                          NameObject("/Width"): NumberObject(2), NameObject("/Height"): NumberObject(2),
                          NameObject("/BitsPerComponent"): NumberObject(8),
                          NameObject("/ColorSpace"): NameObject("/DeviceGray" if kind == "grey-image" else "/DeviceRGB")})
            resources[NameObject("/XObject")] = DictionaryObject({NameObject("/Im0"): writer._add_object(image)})
            content = b"q 100 0 0 100 0 0 cm /Im0 Do Q"
        else:
            shading = DictionaryObject({NameObject("/ShadingType"): NumberObject(2),
                                        NameObject("/ColorSpace"): NameObject("/DeviceRGB"),
                                        NameObject("/Coords"): ArrayObject([FloatObject(v) for v in (0, 0, 595, 0)]),
                                        NameObject("/Function"): DictionaryObject({
                                            NameObject("/FunctionType"): NumberObject(2),
                                            NameObject("/Domain"): ArrayObject([FloatObject(0), FloatObject(1)]),
                                            NameObject("/C0"): ArrayObject([FloatObject(v) for v in (1, 0, 0)]),
                                            NameObject("/C1"): ArrayObject([FloatObject(v) for v in (0, 0, 1)]),
                                            NameObject("/N"): NumberObject(1)})})
            resources[NameObject("/Shading")] = DictionaryObject({NameObject("/Sh0"): writer._add_object(shading)})
            content = b"/Sh0 sh"
        page[NameObject("/Resources")] = resources
        stream = DecodedStreamObject()
        stream.set_data(content)
        page[NameObject("/Contents")] = writer._add_object(stream)
    path = tmp_path / "images.pdf"
    with open(path, "wb") as handle:
        writer.write(handle)
    facts = count(str(path))
    assert (facts.pages, facts.colour_pages, facts.colour_known) == (4, 2, True)
    assert facts.colour_page_numbers == {2, 4}


def test_concatenated_pdfs_of_a_multi_document_job_are_all_counted(tmp_path):
    from agent.pagecount import count_job

    first = docs.pdf(tmp_path / "a.pdf", 2, colour_pages=(0,)).read_bytes()
    second = docs.pdf(tmp_path / "b.pdf", 3, size=docs.LETTER_PT).read_bytes()
    third = docs.pdf_with_object_streams(tmp_path / "c.pdf", 4).read_bytes()
    path = tmp_path / "job"
    path.write_bytes(first + second + third)
    facts = count(str(path))
    assert (facts.pages, facts.colour_pages, facts.paper_size) == (9, 1, "mixed")
    assert facts.page_papers == ["A4"] * 2 + ["Letter"] * 7
    assert count(str(path), colour=False).pages == 9
    assert count_job(str(path), copies=2, monochrome=True).sheets == 18
