// Everything in quant/: level sets, the quantizers as autograd ops, quantized layers and ResNets, checkpoint
// helpers (progressive init, show_params), the clipping-parameter groups and ActNN's packer (quant/actnn).
#pragma once

#include "quant/actnn/packer.h"
#include "quant/checkpoint.h"
#include "quant/coded_saves.h"
#include "quant/levels.h"
#include "quant/ops.h"
#include "quant/param_groups.h"
#include "quant/quant_layers.h"
#include "quant/quant_resnet.h"
#include "quant/quant_spec.h"
