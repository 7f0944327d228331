"""Test helpers for mmrag and for applications built on it.

:class:`BedrockEmulator` is a loopback Amazon Bedrock Runtime: a real HTTP server on 127.0.0.1 that the real
boto3 ``bedrock-runtime`` client talks to through ``endpoint_url``. It answers InvokeModel (Titan Text
Embeddings V2/G1, Titan Multimodal Embeddings G1, Nova Multimodal Embeddings, Claude Messages), Converse and
ConverseStream with deterministic fake models. It is as strict as the documented service, from the model table of
:mod:`mmrag.providers.bedrock.catalog` (inference profiles and the signing Region, retired ids, ``temperature``,
``topP``, forced tool choice, ``maxTokens``, token limits), injects latency and faults (throttling, 5xx, access
denied, quota exceeded), and records every request::

    from mmrag.testing import BedrockEmulator, Fault

    with BedrockEmulator() as emu:
        emu.add_fault(Fault("throttle", times=2, model="anthropic.*"))
        client = emu.client(max_attempts=3)   # boto3 retries through the two throttles
        ...
        assert len(emu.requests) == 3

Importing this package is cheap: boto3 loads in :meth:`BedrockEmulator.client`, Pillow on the first image. The
server side never imports boto3.
"""

from mmrag.testing._base import Limits
from mmrag.testing._emulator import BedrockEmulator
from mmrag.testing._records import Fault, FaultKind, RecordedRequest

__all__ = ["BedrockEmulator", "Fault", "FaultKind", "Limits", "RecordedRequest"]
