"""Built-in toolsets. Each is a package that imports only ``tandem.core`` and registers through the
``tandem.toolsets`` entry-point group, as a third-party toolset would."""
