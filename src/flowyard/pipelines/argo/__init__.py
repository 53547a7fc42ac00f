"""KFP v1 / Argo ``argoproj.io/v1alpha1 Workflow`` support: validation and a local engine.

See ``docs/pipelines.md`` (section "KFP v1 / Argo workflows").
"""
