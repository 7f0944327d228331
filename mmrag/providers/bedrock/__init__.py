"""Bedrock providers: Claude (chat models, captioner), Titan, Nova and Cohere embeddings, the shared boto3 client.

Concrete modules import boto3/langchain-aws lazily; importing this package loads no SDK.
"""

__all__: list[str] = []
