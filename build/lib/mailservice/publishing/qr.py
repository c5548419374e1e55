"""QR codes for printed materials that lead to the feedback page (seed 004 p. 11: "qr-код").

The ``qrcode`` package draws the matrix; PNG goes through its pure-Python PyPNG writer (``pypng``), SVG through
its path writer, so no imaging library is needed. Error correction level M survives a smudged print.
"""

from __future__ import annotations

import io

import qrcode
import qrcode.constants
from qrcode.image.pure import PyPNGImage
from qrcode.image.svg import SvgPathImage


def _code(url: str) -> qrcode.QRCode:
    if not url.startswith(("http://", "https://")):
        raise ValueError(f"QR-код должен вести на полный адрес страницы (http или https), а не на {url!r}")
    code = qrcode.QRCode(error_correction=qrcode.constants.ERROR_CORRECT_M, box_size=10, border=4)
    code.add_data(url)
    code.make(fit=True)
    return code


def qr_png(url: str) -> bytes:
    """A black-on-white PNG QR code of ``url`` (10 pixels per module, quiet zone of 4 modules)."""
    buffer = io.BytesIO()
    _code(url).make_image(image_factory=PyPNGImage).save(buffer)
    return buffer.getvalue()


def qr_svg(url: str) -> bytes:
    """An SVG QR code of ``url`` (scales without loss for print)."""
    buffer = io.BytesIO()
    _code(url).make_image(image_factory=SvgPathImage).save(buffer)
    return buffer.getvalue()


__all__ = ["qr_png", "qr_svg"]
