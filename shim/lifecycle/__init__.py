"""One container's life under the shim: what to run (``plan``), start-up before trio
(``startup``), supervision in trio (``supervise``, which also ends it), tied together by
``run``."""
