"""An OpenAI-compatible gateway simulator for tests, the demo and benchmarks (stdlib only).

`SimulatorServer` runs it in a thread of this process; `SimulatorProcess` runs `python -m simulator`
as a subprocess and talks to its control API (`/_sim/config`, `/_sim/script`, `/_sim/stats`,
`/_sim/reset`). Faults are chosen per request with a `[[sim: 429x2, retry_after_ms=20]]` directive
in the last user message, the `X-Sim-Fault` header, or globally with `configure(fault=...)`.
"""

from simulator.harness import SimulatorProcess
from simulator.server import DEFAULT_API_KEY, MODELS, SimulatorServer

__all__ = ["DEFAULT_API_KEY", "MODELS", "SimulatorProcess", "SimulatorServer"]
