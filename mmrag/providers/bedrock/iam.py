"""Least-privilege IAM policies for the configured models, Region and stores: one per use (ingest, query).

``mmrag models --iam`` prints them. Built from the same resolution the providers use
(:func:`mmrag.providers.bedrock.client.resolve_roles`), so the policy names exactly the ids mmrag calls. No network
call is made: the account id is ``*`` unless given.

Sources (AWS documentation):

- [invoke]  Bedrock user guide, "Prerequisites for inference profiles"
  (https://docs.aws.amazon.com/bedrock/latest/userguide/inference-profiles-prereq.html): calling an inference
  profile needs ``bedrock:InvokeModel*`` on the profile ARN AND on the foundation model in every destination Region;
  Converse is authorised as ``bedrock:InvokeModel``, ConverseStream as ``bedrock:InvokeModelWithResponseStream``.
- [global]  "Global cross-Region inference"
  (https://docs.aws.amazon.com/bedrock/latest/userguide/global-cross-region-inference.html): a ``global.`` profile
  also needs the Region-less foundation-model ARN ``arn:aws:bedrock:::foundation-model/<id>``.
- [access]  "Request access to models" (https://docs.aws.amazon.com/bedrock/latest/userguide/model-access.html):
  access is on by default; the first call to a third-party model (Anthropic, Cohere...) starts an AWS Marketplace
  subscription, which needs ``aws-marketplace:Subscribe`` and ``aws-marketplace:ViewSubscriptions`` (or one first
  call by an administrator); Anthropic models need the one-time use-case form per account (or organisation).
- [app]     "Use an application inference profile": ``bedrock:GetInferenceProfile`` on it (langchain-aws reads the
  underlying model of an application inference profile ARN before the first call).
- [kms]     S3 user guide, "Using server-side encryption with AWS KMS keys (SSE-KMS)": PutObject needs
  ``kms:GenerateDataKey``, GetObject ``kms:Decrypt`` on the key.
- [aoss]    OpenSearch Serverless developer guide, "Data access control" and "Identity and Access Management":
  IAM ``aoss:APIAccessAll`` on the collection, and a data-access policy (its own JSON document, attached to the
  collection, not to the role) granting ``aoss:*Index`` / ``aoss:*Document`` permissions on
  ``index/<collection>/<index>``.
- [es]      OpenSearch Service developer guide, "Identity and Access Management": ``es:ESHttp*`` on
  ``arn:aws:es:<region>:<account>:domain/<domain>/*``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Literal
from urllib.parse import urlsplit

from mmrag.config import Settings
from mmrag.providers.bedrock.catalog import Resolved, split_model_id

__all__ = ["IamPolicies", "iam_policies"]

Use = Literal["ingest", "query"]
_INVOKE = ["bedrock:InvokeModel", "bedrock:InvokeModelWithResponseStream"]
_THIRD_PARTY = ("anthropic.", "cohere.", "meta.", "mistral.", "ai21.", "deepseek.", "writer.", "openai.", "qwen.")
_AOSS_HOST = re.compile(r"^(?P<id>[a-z0-9]+)\.(?P<region>[a-z0-9-]+)\.aoss\.amazonaws\.com$")
_ES_HOST = re.compile(
    r"^(?:search|vpc)-(?P<domain>[a-z][a-z0-9-]*)-[a-z0-9]+\.(?P<region>[a-z0-9-]+)\.es\.amazonaws\.com$")


@dataclass(frozen=True)
class IamPolicies:
    """The identity policy of each use, and the OpenSearch Serverless data-access policy when the store needs one.

    Attributes:
        identity: ``{"ingest": policy, "query": policy}``, each an IAM policy document (``Version``, ``Statement``).
        aoss_data_access: the data-access policy document (a list of rule sets) for the collection, or None.
        notes: what IAM cannot grant (the Anthropic use-case form) and placeholders to fill in.
    """

    identity: dict[str, dict[str, Any]]
    aoss_data_access: list[dict[str, Any]] | None = None
    notes: tuple[str, ...] = field(default=())


def _model_arns(resolved: Resolved, account: str) -> tuple[list[str], list[str], dict[str, Any] | None]:
    """(profile ARNs, foundation-model ARNs, condition on the foundation models) for one resolved id."""
    model_id, region = resolved.model_id, resolved.region
    if model_id.startswith("arn:"):
        # An application (or system) inference profile ARN: the models behind it are reached only through it.
        return [model_id], ["arn:aws:bedrock:*::foundation-model/*"], {
            "StringEquals": {"bedrock:InferenceProfileArn": model_id}}
    prefix, base = split_model_id(model_id)
    if prefix is None:  # on demand, in one Region
        return [], [f"arn:aws:bedrock:{region}::foundation-model/{base}"], None
    profile = f"arn:aws:bedrock:{region}:{account}:inference-profile/{model_id}"
    # [invoke] destination Regions are chosen by Bedrock: any Region, but only through this profile.
    models = [f"arn:aws:bedrock:*::foundation-model/{base}"]
    if prefix == "global":
        models.append(f"arn:aws:bedrock:::foundation-model/{base}")  # [global] the Region-less ARN
    return [profile], models, {"StringLike": {"bedrock:InferenceProfileArn": profile}}


def _bedrock_statements(roles: list[Resolved], account: str, sid: str) -> list[dict[str, Any]]:
    statements: list[dict[str, Any]] = []
    profiles: list[str] = []
    direct: list[str] = []
    for i, resolved in enumerate(roles):
        profile_arns, model_arns, condition = _model_arns(resolved, account)
        profiles += [a for a in profile_arns if a not in profiles]
        if condition is None:
            direct += [a for a in model_arns if a not in direct]
        else:
            statements.append({"Sid": f"{sid}ModelsViaProfile{i + 1}", "Effect": "Allow", "Action": _INVOKE,
                               "Resource": model_arns, "Condition": condition})
    if profiles:
        statements.insert(0, {"Sid": f"{sid}InferenceProfiles", "Effect": "Allow",
                              "Action": [*_INVOKE, "bedrock:GetInferenceProfile"], "Resource": profiles})
    if direct:
        statements.insert(0, {"Sid": f"{sid}Models", "Effect": "Allow", "Action": _INVOKE, "Resource": direct})
    third_party = any(split_model_id(r.model_id)[1].startswith(_THIRD_PARTY) or r.model_id.startswith("arn:")
                      for r in roles)
    if third_party:  # [access]
        statements.append({"Sid": f"{sid}MarketplaceFirstCall", "Effect": "Allow",
                           "Action": ["aws-marketplace:ViewSubscriptions", "aws-marketplace:Subscribe"],
                           "Resource": "*"})
    return statements


def _s3_statements(settings: Settings, use: Use, kms_key: str | None, sid: str) -> list[dict[str, Any]]:
    if not settings.s3_bucket:
        return []
    bucket = settings.s3_bucket
    objects = f"arn:aws:s3:::{bucket}/{settings.s3_prefix}*"
    actions = ["s3:GetObject", "s3:PutObject", "s3:DeleteObject"] if use == "ingest" else ["s3:GetObject"]
    statements: list[dict[str, Any]] = [
        {"Sid": f"{sid}Objects", "Effect": "Allow", "Action": actions, "Resource": objects},
        {"Sid": f"{sid}ListPrefix", "Effect": "Allow", "Action": "s3:ListBucket", "Resource": f"arn:aws:s3:::{bucket}",
         "Condition": {"StringLike": {"s3:prefix": [f"{settings.s3_prefix}*"]}}},
    ]
    if kms_key:  # [kms]
        kms = ["kms:Decrypt", "kms:GenerateDataKey"] if use == "ingest" else ["kms:Decrypt"]
        statements.append({"Sid": f"{sid}BucketKey", "Effect": "Allow", "Action": kms, "Resource": kms_key})
    return statements


def _opensearch(settings: Settings, use: Use, account: str, principals: dict[str, str],
                sid: str) -> tuple[list[dict[str, Any]], list[dict[str, Any]] | None]:
    if settings.vector_store != "opensearch" or not settings.opensearch_url or settings.opensearch_auth != "sigv4":
        return [], None
    host = urlsplit(settings.opensearch_url).hostname or ""
    index = f"mmrag-{settings.collection}-*"
    if settings.opensearch_service == "aoss":
        match = _AOSS_HOST.match(host)
        region, collection = (match["region"], match["id"]) if match else ("*", "*")
        statement = {"Sid": f"{sid}ServerlessApi", "Effect": "Allow", "Action": "aoss:APIAccessAll",
                     "Resource": f"arn:aws:aoss:{region}:{account}:collection/{collection}"}
        # [aoss] data-access rules name the collection by NAME, which the endpoint does not carry: "*" matches it.
        data = [{"Description": f"mmrag {u}", "Principal": [principals[u]], "Rules": [{
            "ResourceType": "index", "Resource": [f"index/*/{index}"],
            "Permission": (["aoss:CreateIndex", "aoss:DescribeIndex", "aoss:UpdateIndex", "aoss:DeleteIndex",
                            "aoss:ReadDocument", "aoss:WriteDocument"] if u == "ingest"
                           else ["aoss:DescribeIndex", "aoss:ReadDocument"])}]} for u in ("ingest", "query")]
        return [statement], data
    match = _ES_HOST.match(host)
    region, domain = (match["region"], match["domain"]) if match else ("*", "*")
    actions = (["es:ESHttpGet", "es:ESHttpHead", "es:ESHttpPost", "es:ESHttpPut", "es:ESHttpDelete"]
               if use == "ingest" else ["es:ESHttpGet", "es:ESHttpHead", "es:ESHttpPost"])
    return [{"Sid": f"{sid}Domain", "Effect": "Allow", "Action": actions,
             "Resource": f"arn:aws:es:{region}:{account}:domain/{domain}/*"}], None


def iam_policies(settings: Settings, *, account: str = "*", kms_key: str | None = None,
                 principals: dict[str, str] | None = None, region: str | None = None) -> IamPolicies:
    """The IAM policy of the ingest role and of the query role for ``settings``.

    Ingest calls the fast model (captions, table summaries) and both embedding models, and writes objects and
    vectors; query calls the fast model (decomposition), the strong model (synthesis) and both embedding models
    (a text query is embedded in the image space too), and reads.

    Args:
        settings: models, Region, scope and stores.
        account: the AWS account id in profile and collection ARNs (``*``: any).
        kms_key: the ARN of the KMS key of an SSE-KMS bucket.
        principals: role ARNs for the OpenSearch Serverless data-access policy (default: placeholders).
        region: the source Region (default: as the providers resolve it).

    Raises:
        ConfigError: no Region, a retired model, or a model the Region cannot call.
    """
    from mmrag.providers.bedrock.client import resolve_roles

    roles = resolve_roles(settings, region)
    uses: dict[Use, list[Resolved]] = {
        "ingest": [roles.fast, roles.text_embedding, roles.image_embedding],
        "query": [roles.fast, roles.strong, roles.text_embedding, roles.image_embedding],
    }
    principals = principals or {u: f"arn:aws:iam::{account}:role/mmrag-{u}" for u in ("ingest", "query")}
    identity: dict[str, dict[str, Any]] = {}
    data_access = None
    for use, resolved in uses.items():
        sid = use.capitalize()
        search, data_access = _opensearch(settings, use, account, principals, sid)
        statements = [*_bedrock_statements(resolved, account, sid), *_s3_statements(settings, use, kms_key, sid),
                      *search]
        identity[use] = {"Version": "2012-10-17", "Statement": statements}
    notes = []
    if any(split_model_id(r.model_id)[1].startswith("anthropic.") or r.model_id.startswith("arn:")
           for r in uses["query"]):
        notes.append("Anthropic models: submit the one-time use-case form (Bedrock console, model catalog) once per "
                     "account or organisation; IAM cannot grant it.")
    if settings.s3_bucket and not kms_key:
        notes.append("SSE-KMS bucket: pass --kms-key ARN to add kms:GenerateDataKey / kms:Decrypt.")
    if data_access is not None:
        notes.append("OpenSearch Serverless: attach the data-access policy to the collection (aoss "
                     "create-access-policy --type data); it names the role ARNs, not the account.")
    return IamPolicies(identity, data_access, tuple(notes))

