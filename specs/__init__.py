"""Each tool's parameters, parsed in one pass into a typed, frozen spec (ChatSpec, BatchSpec, JobSpec,
RouteSpec, TransitionSpec), and the declarations the tool YAML's parameter blocks are generated from.

Below tools/: nothing here imports Dify or a tool module, so a spec can be built, stored (a job keeps its
JobSpec as JSON) and tested without the SDK.
"""
