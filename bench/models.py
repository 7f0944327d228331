"""Ingest model-call efficiency against the loopback Bedrock emulator at fixed latency.

    python bench/models.py [--n 64] [--concurrency 16] [--repeat 3]

The emulator answers caption Converse calls after 200 ms and embedding InvokeModel calls after 50 ms. One ingest
round is: caption N images (Claude, Converse), embed N captions (Titan Text V2) and N images with their caption
(Titan Multimodal), all through one shared limiter. The lower bound is, per element, the three latencies plus
the client CPU of its three calls (measured one call at a time first: ~3-6 ms each, mostly botocore, under the
GIL), times N / concurrency (and at least the sum of that CPU); efficiency = bound / wall (median of ``--repeat``
rounds). Goal >= 0.9. The latency-only bound (calls x latency / concurrency) is reported alongside. The reported
value is the pipelined round (each element's embeddings start when its caption is back); the staged round (three
batch calls) is in the baseline: it waits for the slowest call of each batch.

Baselines: the same round at concurrency 1 (on N/8 images, scaled to N), and langchain-aws's
``BedrockEmbeddings.embed_documents`` (one request after another) against ``TitanTextEmbeddings`` on the same
N texts. The emulator runs in a child process by default (``--in-process`` to share this one's GIL) with
TCP_NODELAY on its connections.
The last line printed is one JSON object.
"""

from __future__ import annotations

import argparse
import io
import json
import multiprocessing as mp
import os
import statistics
import time
from multiprocessing.connection import Connection
from typing import Any

from PIL import Image, ImageDraw

from mmrag.config import Settings
from mmrag.elements import Element
from mmrag.providers._concurrency import AdaptiveLimiter, RetryPolicy, bounded_map
from mmrag.providers.base import CAPTION_KEY, embedding_text
from mmrag.providers.bedrock.captioner import BedrockCaptioner
from mmrag.providers.bedrock.client import make_bedrock_client
from mmrag.providers.bedrock.titan import TitanMultimodalEmbedder, TitanTextEmbeddings
from mmrag.testing import BedrockEmulator

CAPTION_LATENCY = 0.2
EMBED_LATENCY = 0.05


def chart(i: int) -> bytes:
    img = Image.new("RGB", (320, 240), "white")
    draw = ImageDraw.Draw(img)
    for bar in range(6):
        height = 20 + (i * 37 + bar * 53) % 180
        draw.rectangle((20 + bar * 48, 220 - height, 56 + bar * 48, 220), fill=((i * 40) % 256, 90, 30 * bar))
    draw.text((10, 5), f"Figure {i}", fill="black")
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    return buf.getvalue()


def ingest_round(settings: Settings, client: Any, elements: list[Element], *, pipelined: bool) -> float:
    """Caption, then embed captions and images; returns wall seconds.

    ``pipelined``: each element goes caption → text embedding → image embedding as soon as its caption is back
    (one ``bounded_map`` over elements), so the client-side CPU of one call overlaps other calls' waits.
    Otherwise three stages, each a batch call that waits for its slowest request.
    """
    limiter = AdaptiveLimiter(settings.max_concurrency)
    policy = RetryPolicy(max_retries=settings.max_retries)
    captioner = BedrockCaptioner(settings, client=client, limiter=limiter, policy=policy)
    text = TitanTextEmbeddings(settings, client=client, limiter=limiter, policy=policy)
    image = TitanMultimodalEmbedder(settings, client=client, limiter=limiter, policy=policy)

    def one(element: Element) -> Element:
        (done,) = captioner.caption([element])  # one item: runs inline on this worker thread
        text.embed_documents([embedding_text(done)])
        image.embed_images([done.data or b""], [done.metadata.get(CAPTION_KEY)])
        return done

    started = time.perf_counter()
    if pipelined:
        captioned = bounded_map(one, elements, limiter=limiter)
    else:
        captioned = captioner.caption(elements)
        text.embed_documents([embedding_text(e) for e in captioned])
        image.embed_images([e.data or b"" for e in captioned], [e.metadata.get(CAPTION_KEY) for e in captioned])
    wall = time.perf_counter() - started
    if captioner.stats.failures or any(CAPTION_KEY not in e.metadata for e in captioned):
        raise RuntimeError(f"captions failed: {captioner.stats}")
    return wall


def client_cpu_per_call(settings: Settings, client: Any, element: Element, runs: int) -> dict[str, float]:
    """Client-side CPU seconds of one call of each kind (request building, botocore serialising and signing,
    response parsing), measured one call at a time with the emulator in another process (its CPU not counted).
    """
    captioner = BedrockCaptioner(settings, client=client)
    text = TitanTextEmbeddings(settings, client=client)
    image = TitanMultimodalEmbedder(settings, client=client)
    caption = captioner.caption([element])[0].metadata.get(CAPTION_KEY)
    calls = {"caption": lambda: captioner.caption([element]),
             "text_embedding": lambda: text.embed_documents([f"{element.text} {caption}"]),
             "image_embedding": lambda: image.embed_images([element.data or b""], [caption])}
    out = {}
    for name, call in calls.items():
        call()
        started = time.process_time()
        for _ in range(runs):
            call()
        out[name] = (time.process_time() - started) / runs
    return out


def _start_emulator(nodelay: bool) -> BedrockEmulator:
    del nodelay  # the emulator sets TCP_NODELAY on its connections itself
    emu = BedrockEmulator().start()
    _configure(emu)
    return emu


def _configure(emu: BedrockEmulator) -> None:
    emu.reset()
    emu.set_latency(CAPTION_LATENCY, operation="Converse")
    emu.set_latency(EMBED_LATENCY, operation="InvokeModel")


def _serve(conn: Connection, nodelay: bool) -> None:
    """Child process: run the emulator and answer ``reset`` / ``stats`` / ``stop`` over a pipe."""
    emu = _start_emulator(nodelay)
    conn.send(emu.url)
    while (command := conn.recv()) != "stop":
        if command == "reset":
            _configure(emu)
            conn.send(None)
        else:
            conn.send((len(emu.requests), emu.max_in_flight))
    emu.stop()


class Emulator:
    """The emulator in this process or in a child process (its CPU then stays off the client's GIL, as the real
    service's does)."""

    def __init__(self, *, separate_process: bool, nodelay: bool) -> None:
        self._local: BedrockEmulator | None = None
        self._conn: Connection | None = None
        if separate_process:
            ctx = mp.get_context("spawn")
            self._conn, child = ctx.Pipe()
            self._process = ctx.Process(target=_serve, args=(child, nodelay), daemon=True)
            self._process.start()
            self.url: str = self._conn.recv()
        else:
            self._local = _start_emulator(nodelay)
            self.url = self._local.url

    def reset(self) -> None:
        if self._local is not None:
            _configure(self._local)
        elif self._conn is not None:
            self._conn.send("reset")
            self._conn.recv()

    def stats(self) -> tuple[int, int]:
        """Requests received since the last reset and their peak concurrency."""
        if self._local is not None:
            return len(self._local.requests), self._local.max_in_flight
        assert self._conn is not None
        self._conn.send("stats")
        requests, peak = self._conn.recv()
        return int(requests), int(peak)

    def stop(self) -> None:
        if self._local is not None:
            self._local.stop()
        elif self._conn is not None:
            self._conn.send("stop")
            self._process.join(timeout=5)


def measure(emu: Emulator, settings: Settings, client: Any, elements: list[Element], repeat: int,
            *, pipelined: bool) -> tuple[float, list[float], int, int]:
    """Median wall of ``repeat`` rounds, all walls, requests of the last round, peak in flight."""
    walls = []
    requests = peak = 0
    for _ in range(repeat):
        emu.reset()
        walls.append(ingest_round(settings, client, elements, pipelined=pipelined))
        requests, round_peak = emu.stats()
        peak = max(peak, round_peak)
    return statistics.median(walls), walls, requests, peak


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--n", type=int, default=64)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--in-process", action="store_true", help="run the emulator in this process (shares the GIL)")
    parser.add_argument("--emulator-as-is", action="store_true",  # kept for old command lines; a no-op now
                        help="keep Nagle's algorithm on the emulator's sockets (adds ~40 ms to every response)")
    args = parser.parse_args()
    n, conc = args.n, args.concurrency

    emu = Emulator(separate_process=not args.in_process, nodelay=not args.emulator_as_is)
    try:
        os.environ.update({"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
                           "AWS_EC2_METADATA_DISABLED": "true"})
        settings = Settings(profile="bedrock", bedrock_endpoint_url=emu.url, aws_region="us-east-1",
                            max_concurrency=conc, cache=False)
        client = make_bedrock_client(settings)
        elements = [Element("image", "bench.pdf", text=f"Figure {i}: revenue by region", page=1 + i // 4,
                            data=chart(i)) for i in range(n)]
        ingest_round(settings, client, elements[:conc], pipelined=False)  # warm up: connections, Pillow, JSON

        latency_bound = (n * CAPTION_LATENCY + 2 * n * EMBED_LATENCY) / conc
        # The client's own CPU per call (~3-6 ms, mostly botocore) holds the GIL: no pipeline hides it from the
        # call that pays it, and all of it together cannot take less than its sum on one interpreter.
        emu.reset()
        cpu = client_cpu_per_call(settings, client, elements[0], runs=max(4, n // 8))
        per_element = CAPTION_LATENCY + 2 * EMBED_LATENCY + sum(cpu.values())
        bound = max(n * per_element / conc, n * sum(cpu.values()))
        print("client CPU per call: " + ", ".join(f"{k} {v * 1000:.1f} ms" for k, v in cpu.items())
              + f"; lower bound {bound:.3f}s (latency only: {latency_bound:.3f}s)")
        staged, staged_walls, _, _ = measure(emu, settings, client, elements, args.repeat, pipelined=False)
        print(f"staged ingest (caption batch, then embedding batches): wall {staged:.3f}s "
              f"(runs {', '.join(f'{w:.3f}' for w in staged_walls)}), efficiency {bound / staged:.3f}")
        wall, walls, requests, peak = measure(emu, settings, client, elements, args.repeat, pipelined=True)
        efficiency = bound / wall
        print(f"pipelined ingest: {3 * n} calls, {requests} requests, peak in flight {peak}, "
              f"wall {wall:.3f}s (runs {', '.join(f'{w:.3f}' for w in walls)}), bound {bound:.3f}s, "
              f"efficiency {efficiency:.3f}")

        seq_n = max(1, n // 8)
        seq_settings = settings.model_copy(update={"max_concurrency": 1})
        emu.reset()
        seq_wall = ingest_round(seq_settings, client, elements[:seq_n], pipelined=False) * n / seq_n
        seq_bound = n * (CAPTION_LATENCY + 2 * EMBED_LATENCY)
        print(f"sequential (concurrency 1, {seq_n} images scaled to {n}): {seq_wall:.3f}s "
              f"(bound {seq_bound:.3f}s); concurrent speed-up {seq_wall / wall:.1f}x")

        from langchain_aws import BedrockEmbeddings

        texts = [f"Figure {i}: revenue by region, bar chart number {i}" for i in range(n)]
        lc = BedrockEmbeddings(model_id=settings.text_embedding_model, client=client)
        started = time.perf_counter()
        lc.embed_documents(texts)
        lc_wall = time.perf_counter() - started
        ours = TitanTextEmbeddings(settings, client=client)
        started = time.perf_counter()
        ours.embed_documents(texts)
        ours_wall = time.perf_counter() - started
        print(f"{n} text embeddings: langchain-aws BedrockEmbeddings {lc_wall:.3f}s, "
              f"TitanTextEmbeddings {ours_wall:.3f}s ({lc_wall / ours_wall:.1f}x faster)")
    finally:
        emu.stop()

    result = {
        "bench": "models",
        "metric": "ingest_model_call_efficiency",
        "value": round(efficiency, 3),
        "goal": 0.9,
        "baseline": {
            "emulator": "in-process" if args.in_process else "separate process",
            "emulator_tcp_nodelay": not args.emulator_as_is,
            "n_images": n,
            "concurrency": conc,
            "calls": 3 * n,
            "wall_s": round(wall, 3),
            "lower_bound_s": round(bound, 3),
            "latency_only_bound_s": round(latency_bound, 3),
            "efficiency_vs_latency_only_bound": round(latency_bound / wall, 3),
            "client_cpu_ms_per_call": {k: round(v * 1000, 2) for k, v in cpu.items()},
            "load_average_1min": round(os.getloadavg()[0], 2),
            "peak_in_flight": peak,
            "staged_wall_s": round(staged, 3),
            "staged_efficiency": round(bound / staged, 3),
            "sequential_wall_s": round(seq_wall, 3),
            "speedup_vs_sequential": round(seq_wall / wall, 2),
            "langchain_bedrock_embeddings_s": round(lc_wall, 3),
            "titan_text_embeddings_s": round(ours_wall, 3),
            "speedup_vs_langchain_embeddings": round(lc_wall / ours_wall, 2),
        },
    }
    print(json.dumps(result))


if __name__ == "__main__":
    main()
