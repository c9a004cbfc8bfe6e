from typing import Any

from dify_plugin import ToolProvider
from dify_plugin.errors.tool import ToolProviderCredentialValidationError

from tools.support import validate_provider_credentials


class HolySheepProvider(ToolProvider):
    def _validate_credentials(self, credentials: dict[str, Any]) -> None:
        problem = validate_provider_credentials(credentials)
        if problem:
            raise ToolProviderCredentialValidationError(problem)
