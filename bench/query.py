"""Query chain wall time against its critical path, on the loopback Bedrock emulator at fixed latency.

    python bench/query.py [--questions 5] [--decompose-ms 300] [--ttft-ms 400] [--synth-ms 800]
                          [--answer-ms 400] [--embed-ms 30] [--subs 3]

A small collection (a PDF, a reference card, an HTML page with figures, three chart images) is ingested through
the emulator, then each question goes through:

* the query chain (``build_query_chain``, mode ``fusion``) streamed: wall time and time to the first token;
* the same steps run one at a time and timed on their own, in the same state: decomposition (fast model,
  structured output, ``--decompose-ms``), each sub-question's retrieval (Titan text + Titan multimodal query
  embeddings at ``--embed-ms``, dense + BM25 + image search), RRF, the synthesis request's preparation (image
  blocks), and the streamed synthesis (strong model: first token after ``--ttft-ms``, the rest paced so the
  whole stream takes ``--synth-ms``)::

      critical = decompose + max(retrieval per sub-question) + fusion + preparation + synthesis
      ratio    = chain wall / critical          (median over questions; goal <= 1.05)

* the chain in mode ``qa-pairs`` and a sequential seed-style chain: decompose, retrieve the sub-questions one
  after another, answer each sub-question in turn (fast model, streamed, ``--answer-ms``), then synthesise.

The emulator streams with a per-event delay (a subclass that paces ``ConverseStream`` events; the stock emulator
sends every event at once after the latency). The emulator runs in this process (few calls; its CPU is small).
The last line printed is one JSON object.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import time
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from mmrag.config import Settings
from mmrag.testing import BedrockEmulator, RecordedRequest

CORPUS = Path("/work/shared/corpus")
SOURCES = ("docs/strucchange-intro.pdf", "docs/octave-refcard-a4.pdf", "html/octave/Voronoi-Diagrams.html",
           "images/img_029.png", "images/img_030.png", "images/img_031.png")
ANSWER = ("The structural change tests use the USIncExp data set [1], and the figures show the fitted boundaries "
          "and the empirical fluctuation process crossing them [2][3]. The reference card lists the plotting "
          "commands used for such charts [4], and the Voronoi diagram example draws the cells of a point set [5]. "
          "Each statement above is supported by the numbered excerpts, quoted exactly where numbers appear.")
SUB_ANSWER = "The excerpts answer this part directly [1], with the supporting figure in [2]."


class PacedEmulator(BedrockEmulator):
    """The emulator, with ``ConverseStream`` events spread over ``stream_seconds`` after the first token."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.stream_seconds: dict[str, float] = {}  # model substring -> seconds from first token to the end

    def _send_stream(self, handler: Any, record: RecordedRequest, events: list[bytes], fault: Any) -> None:
        total = next((s for key, s in self.stream_seconds.items() if key in (record.model_id or "")), 0.0)
        super()._send_stream(handler, record, _paced(events, total), fault)  # type: ignore[arg-type]


def _paced(events: list[bytes], total: float) -> Iterator[bytes]:
    # events: messageStart, the first text delta, more deltas, then stop/metadata; the first delta goes out at once
    gap = total / max(1, len(events) - 2)
    for i, event in enumerate(events):
        if i >= 2 and gap > 0:
            time.sleep(gap)
        yield event


def _responder(subs: int) -> Any:
    def reply(record: RecordedRequest) -> Any:
        body = record.body or {}
        if "toolConfig" in body:  # decomposition: forced SubQuestions tool
            text = body["messages"][-1]["content"][0]["text"]
            question = text.rsplit("Question:", 1)[-1].strip()
            return {"tool": "SubQuestions", "input": {"sub_questions": [
                f"{question} (aspect {i}: {w})"
                for i, w in enumerate(("data", "figures", "method", "scope")[:subs], 1)]}}
        if record.operation == "ConverseStream":
            return ANSWER if "sonnet" in record.model_id else SUB_ANSWER
        return None  # captions: the default echo
    return reply


def questions(n: int) -> list[str]:
    rows = [json.loads(line) for line in (CORPUS / "questions.jsonl").read_text().splitlines() if line.strip()]
    wanted = [r["question"] for r in rows if r.get("doc", "").startswith(("docs/strucchange", "docs/octave"))]
    wanted += [r["question"] for r in rows if r["question"] not in wanted]
    return wanted[:n]


def _text(content: Any) -> str:
    if isinstance(content, str):
        return content
    return "".join(b if isinstance(b, str) else str(b.get("text", "")) for b in content
                   if isinstance(b, str) or (isinstance(b, dict) and b.get("type") == "text"))


def timed_stream(items: Iterable[Any]) -> tuple[float, float, Any]:
    """(seconds to the first str item, seconds to the end, last item)."""
    started = time.perf_counter()
    first = None
    last: Any = None
    for item in items:
        if first is None and isinstance(item, str) and item:
            first = time.perf_counter() - started
        last = item
    return (first if first is not None else float("nan")), time.perf_counter() - started, last


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--questions", type=int, default=5)
    parser.add_argument("--decompose-ms", type=float, default=300)
    parser.add_argument("--ttft-ms", type=float, default=400)
    parser.add_argument("--synth-ms", type=float, default=800)
    parser.add_argument("--answer-ms", type=float, default=400)
    parser.add_argument("--embed-ms", type=float, default=30)
    parser.add_argument("--subs", type=int, default=3, help="sub-questions the fast model returns (plus the original)")
    args = parser.parse_args()
    os.environ.update({"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
                       "AWS_EC2_METADATA_DISABLED": "true"})
    from mmrag.chains.decomposition import decompose_chain
    from mmrag.chains.ingestion import ingest, open_components
    from mmrag.chains.query import QueryOptions, build_query_chain, retrieve_all
    from mmrag.chains.synthesis import load_images, synthesis_messages
    from mmrag.providers.bedrock.claude import stream_with_retry
    from mmrag.retrievers.fusion import reciprocal_rank_fusion
    from mmrag.retrievers.multimodal import MultimodalRetriever

    bench_started = time.perf_counter()
    emu = PacedEmulator().start()
    tmp = tempfile.TemporaryDirectory(prefix="mmrag-bench-query-")
    try:
        emu.script_chat(_responder(args.subs))
        settings = Settings(profile="bedrock", bedrock_endpoint_url=emu.url, aws_region="us-east-1", cache=False,
                            home=Path(tmp.name))
        providers, collection = open_components(settings)
        report = ingest([str(CORPUS / s) for s in SOURCES], settings, providers=providers, collection=collection)
        print(f"collection: {report.elements} from {len(SOURCES)} sources ({report.seconds:.1f}s, no latency)")

        ms = 1 / 1000
        first_token = args.ttft_ms * ms
        emu.set_latency(args.embed_ms * ms, operation="InvokeModel")
        emu.set_latency(args.decompose_ms * ms, model="*haiku*", operation="Converse")
        emu.set_latency(args.answer_ms * ms / 2, model="*haiku*", operation="ConverseStream")
        emu.set_latency(first_token, model="*sonnet*", operation="ConverseStream")
        emu.stream_seconds = {"haiku": args.answer_ms * ms / 2, "sonnet": args.synth_ms * ms - first_token}
        floor = (args.decompose_ms + 2 * args.embed_ms + args.synth_ms) * ms
        print(f"latencies: decompose {args.decompose_ms:.0f} ms, embeddings {args.embed_ms:.0f} ms, synthesis "
              f"{args.synth_ms:.0f} ms (first token at {args.ttft_ms:.0f} ms), sub-answers {args.answer_ms:.0f} ms; "
              f"model-latency floor of the chain {floor:.3f}s")

        options = QueryOptions()
        fusion_chain = build_query_chain(settings, providers=providers, collection=collection, options=options)
        qa_chain = build_query_chain(settings, providers=providers, collection=collection,
                                     options=QueryOptions(mode="qa-pairs"))
        retriever = MultimodalRetriever(collection=collection, text_embeddings=providers.text_embeddings,
                                        image_embedder=providers.image_embedder, k=options.k)
        decomposer = decompose_chain(providers.fast_chat, max_sub_questions=options.max_sub_questions)
        strong, fast = providers.strong_chat, providers.fast_chat
        assert strong is not None and fast is not None

        def parts(question: str) -> dict[str, Any]:
            """Each step on its own, timed."""
            t = time.perf_counter()
            subs = list(decomposer.invoke(question))
            out: dict[str, Any] = {"decompose": time.perf_counter() - t, "subs": len(subs)}
            lists: dict[str, Any] = {}
            ranks = []
            for i, sub in enumerate(subs, 1):
                t = time.perf_counter()
                ranked = retriever.rank(sub)
                ranks.append(time.perf_counter() - t)
                lists.update({f"{name}:q{i}": hits for name, hits in ranked.items()})
            out["retrieval_max"], out["retrieval_sum"] = max(ranks), sum(ranks)
            t = time.perf_counter()
            retrieve_all(retriever, subs)  # the chain's parallel step, on its own: not part of the critical path
            out["retrieval_parallel"] = time.perf_counter() - t
            t = time.perf_counter()
            hits = reciprocal_rank_fusion(lists, options.rrf_k, limit=options.context_size)
            out["fusion"] = time.perf_counter() - t
            t = time.perf_counter()
            images = load_images(hits, collection.objects, options.max_images)
            messages = synthesis_messages(question, subs, hits, images)
            out["prepare"] = time.perf_counter() - t
            out["synth_ttft"], out["synthesis"], _ = timed_stream(
                _text(c.content) for c in stream_with_retry(strong, messages))
            out["critical"] = (out["decompose"] + out["retrieval_max"] + out["fusion"] + out["prepare"]
                               + out["synthesis"])
            return out

        def sequential(question: str) -> tuple[float, float]:
            """Seed-style: decompose, retrieve each sub-question in turn, answer each in turn, synthesise."""
            started = time.perf_counter()
            subs = list(decomposer.invoke(question))
            lists: dict[str, Any] = {}
            for i, sub in enumerate(subs, 1):
                lists.update({f"{name}:q{i}": hits for name, hits in retriever.rank(sub).items()})
            hits = reciprocal_rank_fusion(lists, options.rrf_k, limit=options.context_size)
            images = load_images(hits, collection.objects, options.max_images)
            pairs = [(sub, "".join(_text(c.content) for c in stream_with_retry(fast, synthesis_messages(
                sub, [], hits, images)))) for sub in subs]
            before_synthesis = time.perf_counter() - started
            ttft, _, _ = timed_stream(_text(c.content) for c in stream_with_retry(
                strong, synthesis_messages(question, subs, hits, images, qa_pairs=pairs)))
            return time.perf_counter() - started, before_synthesis + ttft

        qs = questions(args.questions)
        timed_stream(fusion_chain.stream(qs[0]))  # warm up: connections, Pillow, first FAISS loads
        sequential(qs[0])
        rows = []
        for i, q in enumerate(qs, 1):
            ttft, wall, answer = timed_stream(fusion_chain.stream(q))
            p = parts(q)
            qa_ttft, qa_wall, _ = timed_stream(qa_chain.stream(q))
            seq_wall, seq_ttft = sequential(q)
            rows.append({"wall": wall, "ttft": ttft, "critical": p["critical"], "ratio": wall / p["critical"],
                         "qa_wall": qa_wall, "qa_ttft": qa_ttft, "seq_wall": seq_wall, "seq_ttft": seq_ttft,
                         "parts": p, "citations": len(getattr(answer, "citations", ()))})
            print(f"q{i}: {p['subs']} questions; chain wall {wall:.3f}s, first token {ttft:.3f}s; critical path "
                  f"{p['critical']:.3f}s = decompose {p['decompose']:.3f} + retrieval {p['retrieval_max']:.3f} (max; "
                  f"sum {p['retrieval_sum']:.3f}, all in parallel {p['retrieval_parallel']:.3f}) + fusion "
                  f"{p['fusion'] * 1000:.1f} ms + prepare "
                  f"{p['prepare'] * 1000:.1f} ms + synthesis {p['synthesis']:.3f} (first token {p['synth_ttft']:.3f}) "
                  f"-> ratio {wall / p['critical']:.3f}; qa-pairs {qa_wall:.3f}s (first token {qa_ttft:.3f}s); "
                  f"sequential seed {seq_wall:.3f}s (first token {seq_ttft:.3f}s)")
    finally:
        emu.stop()
        tmp.cleanup()

    def med(key: str) -> float:
        return statistics.median(r[key] for r in rows)

    ratio = med("ratio")
    print(f"median: chain {med('wall'):.3f}s, critical path {med('critical'):.3f}s, ratio {ratio:.3f}; first token "
          f"{med('ttft'):.3f}s; qa-pairs {med('qa_wall'):.3f}s (first token {med('qa_ttft'):.3f}s); sequential seed "
          f"{med('seq_wall'):.3f}s (first token {med('seq_ttft'):.3f}s) -> speed-up "
          f"{med('seq_wall') / med('qa_wall'):.2f}x (qa-pairs, same work), "
          f"{med('seq_wall') / med('wall'):.2f}x (fusion)")
    print(f"bench runtime {time.perf_counter() - bench_started:.0f}s")
    print(json.dumps({"bench": "query", "metric": "query_wall_over_critical_path", "value": round(ratio, 3),
                      "goal": 1.05, "baseline": {
                          "questions": len(rows), "sub_questions": rows[0]["parts"]["subs"],
                          "latency_ms": {"decompose": args.decompose_ms, "embedding": args.embed_ms,
                                         "synthesis": args.synth_ms, "synthesis_first_token": args.ttft_ms,
                                         "sub_answer": args.answer_ms},
                          "model_latency_floor_s": round(floor, 3),
                          "chain_wall_s": round(med("wall"), 3), "critical_path_s": round(med("critical"), 3),
                          "ratios": [round(r["ratio"], 3) for r in rows],
                          "time_to_first_token_s": round(med("ttft"), 3),
                          "qa_pairs_wall_s": round(med("qa_wall"), 3),
                          "qa_pairs_first_token_s": round(med("qa_ttft"), 3),
                          "sequential_seed_wall_s": round(med("seq_wall"), 3),
                          "sequential_seed_first_token_s": round(med("seq_ttft"), 3),
                          "speedup_vs_sequential_qa_pairs": round(med("seq_wall") / med("qa_wall"), 2),
                          "speedup_vs_sequential_fusion": round(med("seq_wall") / med("wall"), 2)}}))


if __name__ == "__main__":
    main()
