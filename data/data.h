// Everything in data/: datasets (CIFAR, IDX/MNIST, ImageFolder), transforms and the DataLoader.
#pragma once

#include "data/cifar.h"
#include "data/dataset.h"
#include "data/idx.h"
#include "data/image_decode.h"
#include "data/image_folder.h"
#include "data/loader.h"
#include "data/sample_rng.h"
#include "data/sampler.h"
#include "data/subset.h"
#include "data/transforms.h"
