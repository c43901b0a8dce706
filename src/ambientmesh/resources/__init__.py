"""What users bring: resource kinds, manifest loading, strict validation and typed views.

- ``kinds``: the registry of served kinds (group, versions, plural, scope).
- ``loader``: files, directories and stdin into ``Document``s; ``validate_documents``; ``prepare``.
- ``validation``: ``validate(obj) -> list[FieldIssue]``, everything wrong with one object.
- ``schemas`` + ``core``: core kinds, by Kubernetes' JSON schemas plus the API server's value rules.
- ``istio_*``, ``gateway*``: pydantic models of Istio and Gateway API kinds (``typed.parse``).
- ``views``: frozen dataclass views of the core kinds; ``selectors``: label selectors.
- ``metadata``, ``modeling``, ``common``, ``issues``: the envelope, model base and shared rules.
"""
