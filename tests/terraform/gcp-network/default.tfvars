# Defaults: no admin_cidrs, no IAP, no web_cidrs -> the Swarm rule only.
