"""The README's findings agree with figures/REPORT.md number for number: every measured number the README quotes
between its ``<!-- findings -->`` and ``<!-- /findings -->`` markers is a number of REPORT.md, to the digits the
README gives (a README that rounds 88.1 to ×88 agrees; one that still quotes an older run does not)."""

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SUPERSCRIPTS = str.maketrans("⁰¹²³⁴⁵⁶⁷⁸⁹⁻", "0123456789-")
# a README number: 1,234.5, optionally ·10⁵ (a measured value has a decimal point, an exponent or a leading ×)
README_NUMBER = re.compile(r"(×|−|-)?(\d+(?:,\d{3})*(?:\.\d+)?)(?:·10([⁻⁰¹²³⁴⁵⁶⁷⁸⁹]+))?")
REPORT_NUMBER = re.compile(r"\d+(?:,\d{3})*(?:\.\d+)?(?:e[+-]?\d+)?(?:·10([⁻⁰¹²³⁴⁵⁶⁷⁸⁹]+))?")


def findings(text: str) -> str:
    parts = re.findall(r"<!-- findings -->(.*?)<!-- /findings -->", text, flags=re.S)
    return "\n".join(parts)


def quoted(text: str) -> list[tuple[str, float, float]]:
    """(token, value, half a unit of its last digit) of every measured number in ``text``."""
    out = []
    for m in README_NUMBER.finditer(text):
        sign, mantissa, exponent = m.groups()
        if not (sign == "×" or "." in mantissa or exponent):
            continue  # counts, depths, steps and years are not measurements
        digits = mantissa.replace(",", "")
        decimals = len(digits.split(".")[1]) if "." in digits else 0
        scale = 10.0 ** int(exponent.translate(SUPERSCRIPTS)) if exponent else 1.0
        out.append((m.group(0), float(digits) * scale, 0.5 * 10.0**-decimals * scale))
    return out


def report_values(text: str) -> list[float]:
    values = []
    for m in REPORT_NUMBER.finditer(text):
        number, exponent = m.group(0).split("·10")[0].replace(",", ""), m.group(1)
        values.append(float(number) * (10.0 ** int(exponent.translate(SUPERSCRIPTS)) if exponent else 1.0))
    return values


def missing(region: str, report: str) -> list[str]:
    """The measured numbers of ``region`` that ``report`` does not have to the digits ``region`` gives."""
    values = report_values(report)
    return [tok for tok, v, half in quoted(region) if not any(abs(v - r) <= half * (1 + 1e-9) for r in values)]


def test_the_readme_quotes_only_numbers_of_the_report():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    region = findings(readme)
    assert region.strip(), "the README marks its findings with <!-- findings --> … <!-- /findings -->"
    absent = missing(region, (ROOT / "figures" / "REPORT.md").read_text(encoding="utf-8"))
    assert not absent, f"README findings quote numbers REPORT.md does not have: {absent}"


def test_a_number_from_another_run_or_rounded_wrongly_is_caught():
    report = "| L=16: 622 [532, 1.02e+03] | ×103 in the means | 4.23e-06 |"
    assert missing("622 [532, 1020], ×103, 4.23·10⁻⁶, ×1.0·10²", report) == []  # 1.0·10² is 103 to its digits
    assert missing("ours 623.5, ×88, 4.3·10⁻⁶", report) == ["623.5", "×88", "4.3·10⁻⁶"]


@pytest.mark.parametrize(
    ("text", "expected"),
    [("×88 and 1.3·10⁵, 0.42", [88.0, 1.3e5, 0.42]), ("depth 16, 2,400 steps, 1,234.5", [1234.5])],
)
def test_the_number_reader(text, expected):
    assert [v for _, v, _ in quoted(text)] == pytest.approx(expected)
    assert report_values("×88.1 [95 % CI 1.3e+05–2.0], 1,200") == pytest.approx([88.1, 95, 1.3e5, 2.0, 1200])
