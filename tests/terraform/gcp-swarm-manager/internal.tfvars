external_ip  = false
machine_type = "n2-standard-8"
boot_disk    = { size_gb = 100, type = "pd-ssd" }
