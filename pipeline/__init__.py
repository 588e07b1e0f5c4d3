"""The runner: which stage module runs each kind of stage, in what order, and how it is launched."""
