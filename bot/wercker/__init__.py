"""wercker.yml support: ``parse`` (find and load), ``nodes`` (YAML nodes → ``model``),
``schema`` (known keys and options), ``lint`` (checks), ``expand`` ($VAR in options) and
``plan`` (which pipelines and steps run)."""
