"""The loopback Bedrock Runtime emulator: a real HTTP server that the real boto3 client talks to."""

from __future__ import annotations

import json
import logging
import re
import threading
import time
from collections.abc import Iterable
from types import TracebackType
from typing import TYPE_CHECKING, Any, Self
from urllib.parse import unquote, urlsplit

from mmrag.errors import MissingDependencyError
from mmrag.testing._base import ApiError, Limits, ModelInfo, resolve_model
from mmrag.testing._controls import Controls, Responder
from mmrag.testing._records import FAULT_ERRORS, STOP_FAULTS, Fault, RecordedRequest, matches

if TYPE_CHECKING:  # the server, fake models and Pillow load on start() and first use: importing stays cheap
    from mmrag.testing._chat import Reply
    from mmrag.testing._http import Handler, Server
    from mmrag.testing._nova_media import AsyncJobs

__all__ = ["BedrockEmulator"]

logger = logging.getLogger(__name__)

_ROUTE = re.compile(r"/model/(?P<model>[^/]+)/(?P<op>invoke|converse|converse-stream|invoke-with-response-stream)")
_ASYNC = re.compile(r"/async-invoke(?:/(?P<arn>[^/]+))?")  # StartAsyncInvoke (POST), GetAsyncInvoke (GET .../arn)
_OPERATIONS = {
    "invoke": "InvokeModel",
    "converse": "Converse",
    "converse-stream": "ConverseStream",
    "invoke-with-response-stream": "InvokeModelWithResponseStream",
}
_NOT_CHAT = "This action doesn't support the model that you provided. Try again with a supported text or chat model."


class BedrockEmulator:
    """A loopback Bedrock Runtime for tests: real HTTP on 127.0.0.1, real boto3 client, fake models.

    Emulates InvokeModel (Titan Text Embeddings V2 and G1, Titan Multimodal Embeddings G1, Nova Multimodal
    Embeddings, Cohere Embed v4, Anthropic Claude Messages), Converse and ConverseStream (any Claude, Nova, Llama or
    Mistral id; inference-profile ids and ARNs too), and for Nova's video and audio segments StartAsyncInvoke and
    GetAsyncInvoke, writing job output to the S3 given to :meth:`use_s3` (:mod:`mmrag.testing._nova_media`). It is as
    strict as the documented service: model ids, profiles and Regions, ``maxTokens``, ``temperature``/``topP``,
    forced tool choice and structured output are checked against the facts of
    :mod:`mmrag.providers.bedrock.catalog`, inputs against documented limits (:class:`Limits`). Faults
    (throttling, 5xx, access denied, quota exceeded...) and latency can be injected; every request is recorded.

    Example::

        with BedrockEmulator() as emu:
            emu.script_chat(["Paris."])
            client = emu.client()
            reply = client.converse(modelId="us.anthropic.claude-haiku-4-5-20251001-v1:0",
                                    messages=[{"role": "user", "content": [{"text": "Capital of France?"}]}],
                                    inferenceConfig={"maxTokens": 50})

    Args:
        host: interface to bind; keep the loopback default in tests.
        port: TCP port; 0 picks a free one.
        require_max_tokens: reject Converse calls without ``inferenceConfig.maxTokens`` (mmrag sets it on every
            call; real Bedrock would default to the model maximum).
        limits: the documented limits to enforce.
        check_regions: reject what Bedrock rejects for the Region a request is signed for (a geo inference
            profile called from outside its geography, an in-Region model the Region does not offer).
        region: the Region this endpoint is (None: any, like a proxy). A request signed for another Region gets
            what a Regional endpoint answers: 403 ``InvalidSignatureException`` ("Credential should be scoped to a
            valid region"; AWS General Reference, "Signature Version 4 signing": the credential scope's Region
            must be the endpoint's).
    """

    def __init__(
        self,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        require_max_tokens: bool = True,
        limits: Limits | None = None,
        check_regions: bool = True,
        region: str | None = None,
    ) -> None:
        self.host = host
        self.port = port
        self.require_max_tokens = require_max_tokens
        self.limits = limits or Limits()
        self.check_regions = check_regions
        self.region = region
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._server: Server | None = None
        self._thread: threading.Thread | None = None
        self._requests: list[RecordedRequest] = []
        self._in_flight = 0
        self._controls = Controls()
        self._app_profiles: dict[str, str] = {}
        self._async: AsyncJobs | None = None

    # -- lifecycle ---------------------------------------------------------------------------------------------
    def start(self) -> Self:
        """Start serving on a daemon thread; returns self."""
        if self._server is not None:
            return self
        self._stopping.clear()
        from mmrag.testing._http import Server

        server = Server((self.host, self.port), self._handle)
        self.port = server.server_address[1]
        self._server = server
        self._thread = threading.Thread(
            target=server.serve_forever,
            kwargs={"poll_interval": 0.05},
            name=f"bedrock-emulator-{self.port}",
            daemon=True,
        )
        self._thread.start()
        logger.debug("Bedrock emulator listening on %s", self.url)
        return self

    def stop(self) -> None:
        """Stop serving and release the port; injected sleeps are cut short. Safe to call twice."""
        server, self._server = self._server, None
        if server is None:
            return
        self._stopping.set()
        server.shutdown()
        server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    @property
    def url(self) -> str:
        """Endpoint URL for boto3's ``endpoint_url``, e.g. ``http://127.0.0.1:50123``."""
        if self._server is None:
            raise RuntimeError("the emulator is not running: call start() or use it as a context manager")
        return f"http://{self.host}:{self.port}"

    def client(
        self,
        *,
        max_attempts: int = 1,
        max_pool_connections: int = 10,
        read_timeout: float = 60.0,
        connect_timeout: float = 5.0,
        region_name: str | None = None,
    ) -> Any:
        """A real boto3 ``bedrock-runtime`` client pointed at the emulator, with dummy credentials.

        Args:
            max_attempts: total attempts in botocore's ``standard`` retry mode; the default 1 means no retries,
                so tests see injected faults.
            max_pool_connections: urllib3 pool size; raise it for concurrency above 10.
            read_timeout: seconds botocore waits for response bytes.
            connect_timeout: seconds botocore waits to connect.
            region_name: the signing Region (default: the emulator's ``region``, else us-east-1).
        """
        try:
            import boto3
            from botocore.config import Config
        except ImportError as e:
            raise MissingDependencyError("boto3", "aws", "BedrockEmulator.client()") from e

        config = Config(
            retries={"mode": "standard", "total_max_attempts": max_attempts},
            max_pool_connections=max_pool_connections,
            read_timeout=read_timeout,
            connect_timeout=connect_timeout,
        )
        return boto3.client(
            "bedrock-runtime",
            endpoint_url=self.url,
            region_name=region_name or self.region or "us-east-1",
            config=config,
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
            aws_session_token="testing",
        )

    def environ(self) -> dict[str, str]:
        """Environment variables that point any boto3 client built from defaults at the emulator."""
        return {
            "AWS_ENDPOINT_URL_BEDROCK_RUNTIME": self.url,
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_SESSION_TOKEN": "testing",
            "AWS_DEFAULT_REGION": self.region or "us-east-1",
            "AWS_EC2_METADATA_DISABLED": "true",
        }

    # -- behaviour ---------------------------------------------------------------------------------------------
    def script_chat(self, replies: Iterable[Reply] | Responder, *, model: str = "*") -> None:
        """Script chat replies for Converse, ConverseStream and Claude InvokeModel.

        Args:
            replies: either replies to hand out in order, queued after earlier ones (a ``str`` is text; a dict
                ``{"tool": name, "input": {...}}`` is a tool call, e.g. for structured output, and the request must
                offer that tool), or a callable ``(RecordedRequest) -> reply | None`` used whenever the queue is
                empty. When neither gives a reply, the model answers ``"Emulated reply to: <last user text>"``
                (or, when a tool is forced, a minimal input that satisfies the tool's JSON schema).
            model: fnmatch pattern of the model ids this script is for.
        """
        self._controls.script(replies, model)

    def set_latency(self, seconds: float, *, model: str = "*", operation: str = "*") -> None:
        """Delay answers of matching requests by ``seconds``; the most recent matching rule wins."""
        self._controls.add_latency(seconds, model, operation)

    def add_fault(self, fault: Fault) -> None:
        """Inject a fault into the next ``fault.times`` matching requests (checked in the order added)."""
        self._controls.add_fault(fault)

    def create_application_inference_profile(self, model_id: str, *, name: str = "mmrag",
                                             region: str | None = None, account: str = "123456789012") -> str:
        """Register an application inference profile over ``model_id`` (a base id or system profile id), as
        Bedrock's CreateInferenceProfile does, and return its ARN: InvokeModel and Converse then accept the ARN
        when signed for its Region (Bedrock user guide, "Use an application inference profile")."""
        region = region or self.region or "us-east-1"
        arn = f"arn:aws:bedrock:{region}:{account}:application-inference-profile/{name}{len(self._app_profiles)}"
        self._app_profiles[arn] = model_id
        return arn

    def use_s3(self, client: Any, *, async_delay: float = 0.0) -> None:
        """Give the emulator an S3 client (moto's, in tests): Nova ``s3Location`` sources are read and
        StartAsyncInvoke output is written with it; an asynchronous job stays ``InProgress`` ``async_delay`` s."""
        jobs = self._jobs()
        jobs.s3, jobs.delay = client, async_delay

    def _jobs(self) -> AsyncJobs:
        if self._async is None:
            from mmrag.testing._nova_media import AsyncJobs

            self._async = AsyncJobs()
        return self._async

    def reset(self) -> None:
        """Forget scripts, latency rules, faults and recorded requests."""
        self._controls.clear()
        with self._lock:
            self._requests.clear()

    # -- observation -------------------------------------------------------------------------------------------
    @property
    def requests(self) -> list[RecordedRequest]:
        """A snapshot of every request received, in arrival order."""
        with self._lock:
            return list(self._requests)

    @property
    def in_flight(self) -> int:
        """Requests being handled right now."""
        with self._lock:
            return self._in_flight

    @property
    def max_in_flight(self) -> int:
        """Peak number of requests handled at the same time, over all models and operations."""
        return self.peak_in_flight()

    def peak_in_flight(self, *, model: str = "*", operation: str = "*") -> int:
        """Peak concurrency among requests matching the patterns, from their recorded start and end times."""
        edges: list[tuple[float, int]] = []
        for r in self.requests:
            if matches(model, r.model_id, r.base_model_id) and matches(operation, r.operation):
                edges += [(r.started, 1), (r.ended if r.ended is not None else float("inf"), -1)]
        peak = current = 0
        for _, step in sorted(edges):  # at equal times, -1 sorts first: back-to-back calls do not overlap
            current += step
            peak = max(peak, current)
        return peak

    # -- request handling (server threads) ---------------------------------------------------------------------
    def _handle(self, handler: Handler) -> None:
        from mmrag.testing._http import read_body

        raw = read_body(handler)
        match = _ROUTE.fullmatch(urlsplit(handler.path).path)
        operation = _OPERATIONS[match["op"]] if match and handler.command == "POST" else "Unknown"
        model_id = unquote(match["model"]) if match else ""
        try:
            body: Any = json.loads(raw) if raw else None
        except ValueError:
            body = None
        if (job := _ASYNC.fullmatch(urlsplit(handler.path).path)) is not None:
            start = handler.command == "POST" and not job["arn"]
            get = handler.command == "GET" and bool(job["arn"])  # ListAsyncInvokes (GET, no ARN) is not emulated
            operation = "StartAsyncInvoke" if start else "GetAsyncInvoke" if get else "Unknown"
            model_id = str(body.get("modelId", "")) if start and isinstance(body, dict) else unquote(job["arn"] or "")
        record = RecordedRequest(
            operation=operation,
            model_id=model_id,
            body=body,
            raw_body=raw,
            headers={k.lower(): v for k, v in handler.headers.items()},
            started=time.monotonic(),
        )
        with self._lock:
            self._requests.append(record)
            self._in_flight += 1
        try:
            self._answer(handler, record)
        except (BrokenPipeError, ConnectionResetError):
            record.error_code = record.error_code or "ClientDisconnected"
            handler.close_connection = True
        finally:
            self._finish(record)

    def _finish(self, record: RecordedRequest) -> None:
        """Mark a request done; called just before its last bytes go out, so a client never sees it in flight."""
        with self._lock:
            if record.ended is None:
                record.ended = time.monotonic()
                self._in_flight -= 1

    def _answer(self, handler: Handler, record: RecordedRequest) -> None:
        from mmrag.testing import _chat

        info: ModelInfo | None = None
        stream_fault: Fault | None = None
        try:
            if record.operation == "Unknown":
                raise ApiError(404, "UnknownOperationException", f"No operation at {handler.command} {handler.path}")
            if self.region is not None and record.region != self.region:
                raise ApiError(403, "InvalidSignatureException", "Credential should be scoped to a valid region.")
            if record.operation == "GetAsyncInvoke":  # model_id holds the invocation ARN
                self._send_json(handler, record, 200, self._jobs().get(record.model_id))
                return
            try:
                info = self._resolve(record)
                record.base_model_id = info.base_id
            finally:
                stream_fault = self._apply_faults(record)
            if record.operation == "InvokeModelWithResponseStream":
                raise ApiError.validation(
                    "mmrag emulator: InvokeModelWithResponseStream is not emulated; use ConverseStream."
                )
            if record.body is None:
                raise ApiError.validation("Malformed input request, please reformat your input and try again.")
            try:
                result = self._compute(record, info)
            except (AttributeError, TypeError, KeyError, IndexError) as exc:
                raise ApiError.validation(
                    f"Malformed input request: {exc!r}, please reformat your input and try again."
                ) from exc
            if stream_fault is not None and stream_fault.kind in STOP_FAULTS:
                if record.operation in ("Converse", "ConverseStream"):
                    result = (_chat.stopped(result[0], stream_fault.kind, stream_fault.message
                                            or STOP_FAULTS[stream_fault.kind]), result[1])
                stream_fault = None
            self._sleep(self._controls.latency_for(record))
            latency_ms = int((time.monotonic() - record.started) * 1000)
            if record.operation == "ConverseStream":
                answer, turn = result
                events = _chat.converse_stream_events(answer, turn, latency_ms)
                self._send_stream(handler, record, events, stream_fault)
            elif record.operation == "Converse":
                answer, turn = result
                self._send_json(handler, record, 200, _chat.converse_response(answer, turn, latency_ms))
            else:
                payload, in_tokens, out_tokens = result
                self._send_json(
                    handler,
                    record,
                    200,
                    payload,
                    {
                        "X-Amzn-Bedrock-Input-Token-Count": str(in_tokens),
                        "X-Amzn-Bedrock-Output-Token-Count": str(out_tokens),
                        "X-Amzn-Bedrock-Invocation-Latency": str(latency_ms),
                    },
                )
        except ApiError as err:
            record.error_code = err.code
            self._send_json(handler, record, err.status, {"message": err.message}, {"x-amzn-ErrorType": err.code})
        except (BrokenPipeError, ConnectionResetError):
            raise
        except Exception as exc:  # a bug in the emulator or in a scripted callable: surface it to the test
            logger.exception("Bedrock emulator failed on %s %s", record.operation, record.model_id)
            record.error_code = "InternalServerException"
            self._send_json(
                handler,
                record,
                500,
                {"message": f"mmrag emulator error: {exc!r}"},
                {"x-amzn-ErrorType": "InternalServerException"},
            )

    def _compute(self, record: RecordedRequest, info: ModelInfo | None) -> Any:
        from mmrag.providers.bedrock.catalog import facts_for
        from mmrag.testing import _chat, _models

        assert info is not None
        body = record.body
        if record.operation == "InvokeModel":
            if info.family in ("titan-text-v2", "titan-text-v1"):
                payload, tokens = _models.invoke_titan_text(body, self.limits, v2=info.family == "titan-text-v2")
                return payload, tokens, 0
            if info.family == "titan-mm":
                payload, tokens = _models.invoke_titan_mm(body, self.limits)
                return payload, tokens, 0
            if info.family == "nova-mme":
                payload, tokens = _models.invoke_nova_mme(body, self.limits, self._jobs().s3)
                return payload, tokens, 0
            if info.family == "cohere-embed-v4":
                from mmrag.testing._cohere import invoke_cohere_embed_v4

                payload, tokens = invoke_cohere_embed_v4(body)
                return payload, tokens, 0
            if info.family == "claude":
                turn = _chat.parse_claude(body, self.limits, facts_for(info.base_id))
                answer = _chat.resolve_reply(self._controls.next_reply(record), turn)
                return _chat.claude_response(answer, turn, info.base_id), turn.input_tokens, answer.output_tokens
            if info.family == "chat":
                raise ApiError.validation(
                    f"mmrag emulator: the InvokeModel body of {info.base_id} is not emulated; call it through Converse."
                )
            raise ApiError.validation("The provided model identifier is invalid.")
        if record.operation == "StartAsyncInvoke":
            if info.family != "nova-mme":
                raise ApiError.validation("mmrag emulator: StartAsyncInvoke is emulated for Nova Multimodal Embeddings")
            return self._jobs().start(body, info.base_id, record.region or "us-east-1"), 0, 0
        if info.family not in ("claude", "chat"):
            raise ApiError.validation(
                _NOT_CHAT if info.family != "other" else "The provided model identifier is invalid."
            )
        turn = _chat.parse_converse(body, self.limits, require_max_tokens=self.require_max_tokens,
                                    facts=facts_for(info.base_id))
        return _chat.resolve_reply(self._controls.next_reply(record), turn), turn

    def _resolve(self, record: RecordedRequest) -> ModelInfo:
        region = record.region if self.check_regions else None
        if ":application-inference-profile/" not in record.model_id:
            return resolve_model(record.model_id, region)
        target = self._app_profiles.get(record.model_id)
        if target is None or (region is not None and record.model_id.split(":")[3] != region):
            raise ApiError.validation("The provided model identifier is invalid.")
        return resolve_model(target, record.model_id.split(":")[3])

    def _apply_faults(self, record: RecordedRequest) -> Fault | None:
        """Fire the first matching fault: raise for HTTP errors, sleep for ``timeout``, return stream faults."""
        chosen = self._controls.take_fault(record)
        if chosen is None:
            return None
        if chosen.kind == "timeout":
            self._sleep(chosen.seconds)
            return None
        if chosen.kind in STOP_FAULTS:
            return chosen
        status, code, message = FAULT_ERRORS[chosen.kind]
        if chosen.kind.startswith("stream_"):
            return chosen
        raise ApiError(status, code, chosen.message or message)

    def _sleep(self, seconds: float) -> None:
        if seconds > 0:
            self._stopping.wait(seconds)

    # -- writing -----------------------------------------------------------------------------------------------
    def _send_json(
        self,
        handler: Handler,
        record: RecordedRequest,
        status: int,
        payload: Any,
        headers: dict[str, str] | None = None,
    ) -> None:
        from mmrag.testing._http import send_json

        record.status = status
        send_json(handler, status, payload, headers, before_body=lambda: self._finish(record))

    def _send_stream(self, handler: Handler, record: RecordedRequest, events: list[bytes], fault: Fault | None) -> None:
        from mmrag.testing._eventstream import encode_exception
        from mmrag.testing._http import send_stream

        if fault is not None:
            _, code, message = FAULT_ERRORS[fault.kind]
            events = [*events[: fault.after_events], encode_exception(code, fault.message or message)]
            record.error_code = code
        record.status = 200
        send_stream(handler, events, before_end=lambda: self._finish(record))
