"""Build examples/northwind-field-manual.pdf, the small sample document ragent ships (written for this
project; public domain). Run: .venv/bin/python scripts/make_example_pdf.py"""

from __future__ import annotations

from pathlib import Path

import pymupdf

PAGES = [
    ("Northwind NW-200 Field Manual", [
        ("Overview", "The Northwind NW-200 is a grid-tied solar inverter for homes and small farms. "
         "It converts direct current from up to two strings of photovoltaic panels into alternating current. "
         "The NW-200 has a rated output of 5 kW and a peak efficiency of 97.6 percent."),
        ("Safety", "Always open the DC isolator before removing the front cover. Wait five minutes after "
         "disconnection so the internal capacitors can discharge. Only a licensed electrician may install "
         "the inverter. The enclosure is rated IP65 and may be mounted outdoors in the shade."),
    ]),
    ("Installation", [
        ("Mounting", "Mount the inverter vertically on a wall that can carry 22 kg. Leave 30 cm of free space "
         "above and below the unit for cooling. Do not install it in direct sunlight or near flammable "
         "materials. The operating temperature range is -25 to 60 degrees Celsius."),
        ("Wiring", "Connect the AC output to a dedicated 32 A circuit breaker. The maximum DC input voltage is "
         "600 V; exceeding it voids the warranty. Use copper cables of at least 6 square millimetres."),
    ]),
    ("Maintenance and Troubleshooting", [
        ("Maintenance", "Inspect the cooling fins every six months and remove dust with a dry brush. "
         "Firmware updates are installed over Wi-Fi from the Northwind app. The warranty lasts ten years "
         "when the unit is registered within 90 days of installation."),
        ("Error codes", "Error E07 means the grid voltage is out of range: check the AC breaker and wait for "
         "the grid to recover. Error E12 means an isolation fault on the DC side: call an electrician. "
         "A blinking green LED means the inverter is starting up."),
    ]),
]

TABLE = [("Parameter", "Value"), ("Rated output", "5 kW"), ("Max DC input", "600 V"),
         ("Weight", "22 kg"), ("Protection", "IP65"), ("Warranty", "10 years")]


def build(out: Path) -> None:
    doc = pymupdf.open()
    for title, sections in PAGES:
        page = doc.new_page()
        y = 72.0
        page.insert_text((72, y), title, fontsize=20, fontname="hebo")
        y += 36
        for heading, body in sections:
            page.insert_text((72, y), heading, fontsize=14, fontname="hebo")
            y += 10
            rect = pymupdf.Rect(72, y, 540, y + 150)
            page.insert_textbox(rect, body, fontsize=11, fontname="helv")
            y += 120
        if title == "Installation":
            page.insert_text((72, y), "Specifications", fontsize=14, fontname="hebo")
            y += 10
            for i, (a, b) in enumerate(TABLE):
                r = pymupdf.Rect(72, y + i * 20, 300, y + (i + 1) * 20)
                page.draw_rect(r)
                page.draw_line((186, r.y0), (186, r.y1))
                page.insert_text((76, r.y0 + 14), a, fontsize=10, fontname="helv")
                page.insert_text((190, r.y0 + 14), b, fontsize=10, fontname="helv")
    doc.set_metadata({"title": "Northwind NW-200 Field Manual", "author": "ragent examples"})
    doc.save(out, deflate=True)


if __name__ == "__main__":
    target = Path(__file__).resolve().parent.parent / "examples" / "northwind-field-manual.pdf"
    build(target)
    print("wrote", target)
