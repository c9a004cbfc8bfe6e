"""Where untrusted text becomes data: bounded parsing and bounded quoting, for every package.

Workflow parameters and credentials can be anything a careless or hostile author types: megabytes of
control characters, JSON nested ten thousand deep, a YAML "billion laughs", a lone surrogate. Every
JSON or YAML input is parsed here, with limits on size and nesting and no YAML aliases, and every value
an error message repeats is quoted here, short and with invisible characters shown. Nothing in this
package imports the others, so gateway/, approval/ and tools/ all use it.
"""

from untrusted.parse import InputError, check_text, parse_json, parse_yaml
from untrusted.quote import quote

__all__ = ["InputError", "check_text", "parse_json", "parse_yaml", "quote"]
