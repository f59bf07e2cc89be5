"""Workers: background tasks (rq task functions, run in-process without Redis) such as the daily licence notice."""
