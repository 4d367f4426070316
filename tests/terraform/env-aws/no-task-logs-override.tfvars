task_logs = null
