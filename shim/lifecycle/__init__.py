"""One container's life under the shim: start-up before trio (``startup``), supervision in
trio (``supervise``), the end (``teardown``), tied together by ``run``."""
