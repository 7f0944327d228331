"""Old import path of the Claude helpers, kept so ``chains/query.py`` and ``chains/synthesis.py`` keep working.

Import from :mod:`mmrag.providers.bedrock.claude`; this module goes once nothing imports it.
"""

from mmrag.providers.bedrock.claude import prepare_images_for_claude, stream_with_retry

__all__ = ["prepare_images_for_claude", "stream_with_retry"]
