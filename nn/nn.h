// Everything in nn/: Module, the layers, losses, initialisers and models.
#pragma once

#include "nn/init.h"
#include "nn/models/preact_resnet.h"
#include "nn/models/resnet.h"
#include "nn/module.h"
#include "nn/modules/activation.h"
#include "nn/modules/batch_norm.h"
#include "nn/modules/container.h"
#include "nn/modules/conv.h"
#include "nn/modules/linear.h"
#include "nn/modules/loss.h"
#include "nn/modules/pooling.h"
