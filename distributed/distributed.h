// distributed/: data-parallel training. See process_group.h (collectives), init.h (rendezvous from the
// environment), ddp.h (DistributedDataParallel), sync_batch_norm.h, metrics.h; the sampler is data/sampler.h.
#pragma once

#include "distributed/ddp.h"
#include "distributed/init.h"
#include "distributed/metrics.h"
#include "distributed/process_group.h"
#include "distributed/process_group_gloo.h"
#include "distributed/process_group_nccl.h"
#include "distributed/sync_batch_norm.h"
