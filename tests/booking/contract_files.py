"""Real contract files made at test time: text PDFs (fpdf2), scanned PDFs and images (Pillow renders the
text into pixels), an encrypted PDF (pypdf) and broken ones."""

import io

from fpdf import FPDF
from PIL import Image, ImageDraw, ImageFont
from pypdf import PdfReader, PdfWriter

CONTRACT_LINES = (
    "Hotel name: Hotel Barajas Airport",
    "Valid from 1 January 2027 to 31 December 2027",
    "Allotment: 25 rooms per night",
    "Rate: EUR 89.50 per room per night",
    "Release period: 48 hours before arrival",
    "Breakfast included",
    "Cancellation: free of charge until 18:00 on the day of arrival.",
)

# Short lines in a large font: what OCR reads reliably.
OCR_LINES = (
    "Valid from 2027-01-01 to 2027-12-31",
    "Allotment: 30 rooms per night",
    "Rate: 95.00 EUR per night",
)


def text_pdf(lines=CONTRACT_LINES, pages: int = 1) -> bytes:
    pdf = FPDF()
    pdf.set_font("Helvetica", size=12)
    for page in range(pages):
        pdf.add_page()
        for line in lines if page == 0 else ("Annex: general conditions apply.",):
            pdf.cell(0, 10, line, new_x="LMARGIN", new_y="NEXT")
    return bytes(pdf.output())


def text_image(lines=OCR_LINES) -> Image.Image:
    font = ImageFont.load_default(size=30)
    image = Image.new("RGB", (900, 60 + 60 * len(lines)), "white")
    draw = ImageDraw.Draw(image)
    for index, line in enumerate(lines):
        draw.text((30, 30 + 60 * index), line, fill="black", font=font)
    return image


def image_bytes(image: Image.Image, fmt: str) -> bytes:
    out = io.BytesIO()
    image.save(out, format=fmt, **({"quality": 92} if fmt == "JPEG" else {}))
    return out.getvalue()


def png(lines=OCR_LINES) -> bytes:
    return image_bytes(text_image(lines), "PNG")


def jpeg(lines=OCR_LINES) -> bytes:
    return image_bytes(text_image(lines), "JPEG")


def scanned_pdf(lines=OCR_LINES) -> bytes:
    """A PDF whose only page is a picture of the text: no text layer."""
    pdf = FPDF()
    pdf.add_page()
    pdf.image(text_image(lines), x=10, y=10, w=190)
    return bytes(pdf.output())


def encrypted_pdf(*, user_password: str = "s3cret", owner_password: str = "owner") -> bytes:
    writer = PdfWriter()
    for page in PdfReader(io.BytesIO(text_pdf())).pages:
        writer.add_page(page)
    writer.encrypt(user_password=user_password, owner_password=owner_password)
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


def corrupt_pdf() -> bytes:
    """A PDF header followed by garbage: no objects, no cross-reference table."""
    return b"%PDF-1.7\n" + bytes(range(256)) * 40 + b"\n%%EOF\n"


def truncated_png() -> bytes:
    data = png()
    return data[: len(data) // 3]
