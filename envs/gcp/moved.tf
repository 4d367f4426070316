# The resources moved into modules/gcp/cluster: these keep existing deployments in place on the
# next apply (without them Terraform would destroy the old addresses and create the new ones).
moved {
  from = module.network
  to   = module.cluster.module.network
}

moved {
  from = module.manager
  to   = module.cluster.module.manager
}

moved {
  from = module.workers
  to   = module.cluster.module.workers
}
