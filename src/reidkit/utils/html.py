"""Small helpers for the self-contained HTML pages reidkit writes (data check, run report).

Every page is one file that opens from disk with no server and no network: styles inline,
images embedded as ``data:`` URIs, plots as inline SVG, no scripts. Text that comes from
files (image names, config values) always goes through ``esc``.
"""

from __future__ import annotations

import base64
import html
import io
from collections.abc import Iterable, Sequence

import numpy as np
from PIL import Image

CSS = """
body { font-family: system-ui, sans-serif; margin: 1.5em; color: #222; }
h1 { font-size: 1.5em; } h2 { font-size: 1.2em; margin-top: 1.6em; border-bottom: 1px solid #ccc; }
table { border-collapse: collapse; margin: 0.5em 0; }
td, th { border: 1px solid #ccc; padding: 2px 8px; text-align: right; }
td.t, th.t { text-align: left; }
.thumbs { display: flex; flex-wrap: wrap; gap: 6px; align-items: flex-start; margin: 4px 0 12px; }
figure { margin: 0; text-align: center; font-size: 10px; width: 72px; overflow-wrap: anywhere; }
figure img { display: block; margin: 0 auto; border: 3px solid #bbb; }
img.ok { border-color: #1eaa3c; } img.bad { border-color: #d22828; }
img.query { border-color: #285ad2; } img.hit { border-color: #1eaa3c; border-style: dashed; }
.finding { margin-bottom: 10px; } .muted { color: #777; }
.plots { display: flex; flex-wrap: wrap; gap: 12px; }
pre { background: #f6f6f6; padding: 8px; overflow-x: auto; font-size: 12px; }
"""


def esc(value: object) -> str:
    """``value`` as HTML text (quotes escaped too, so it is safe inside attributes)."""
    return html.escape(str(value), quote=True)


def image_data_uri(image: Image.Image | np.ndarray, height: int = 96, quality: int = 85) -> str:
    """A ``data:image/jpeg;base64,...`` URI of ``image`` (PIL or HWC uint8 RGB) scaled to
    ``height`` pixels tall."""
    img = Image.fromarray(image) if isinstance(image, np.ndarray) else image.convert("RGB")
    if img.height != height:
        width = max(1, round(img.width * height / max(1, img.height)))
        img = img.resize((width, height), Image.BILINEAR)
    buf = io.BytesIO()
    img.save(buf, format="JPEG", quality=quality)
    return "data:image/jpeg;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def figure(uri: str | None, caption: str, css_class: str = "", title: str = "") -> str:
    """One thumbnail with an (escaped) caption; an unreadable image shows its caption only."""
    tip = f' title="{esc(title)}"' if title else ""
    if uri is None:
        return f'<figure{tip}><div class="muted">unreadable</div>{esc(caption)}</figure>'
    cls = f' class="{esc(css_class)}"' if css_class else ""
    img = f'<img{cls} src="{uri}" alt="">'
    return f"<figure{tip}>{img}<figcaption>{esc(caption)}</figcaption></figure>"


def table(header: Sequence[str], rows: Iterable[Sequence[object]], text_cols: int = 1) -> str:
    """An HTML table; the first ``text_cols`` columns are left-aligned; cells are escaped."""

    def cell(tag: str, i: int, v: object) -> str:
        cls = ' class="t"' if i < text_cols else ""
        return f"<{tag}{cls}>{esc(v)}</{tag}>"

    head = "".join(cell("th", i, h) for i, h in enumerate(header))
    body = "".join(
        "<tr>" + "".join(cell("td", i, v) for i, v in enumerate(r)) + "</tr>" for r in rows
    )
    return f"<table><tr>{head}</tr>{body}</table>"


def page(title: str, body: str) -> str:
    """A complete HTML document with the shared style."""
    return (
        "<!doctype html>\n<html lang='en'><head><meta charset='utf-8'>"
        f"<title>{esc(title)}</title><style>{CSS}</style></head>\n<body>\n"
        f"<h1>{esc(title)}</h1>\n{body}\n</body></html>\n"
    )
