// project_to_levels through the ref backend (ref inherits the host reference from the Backend base class):
// nearest level, ties to the lower level, clamping at both ends, and the symmetric variant, by hand.
#include "ref_test_util.h"

using namespace reftest;

TEST_CASE("ref project_to_levels: nearest level, ties low, clamped, symmetric") {
  Tensor levels = make({-1, 0, 0.5, 1}, {4});
  Tensor x = make({-2, -0.5, 0.25, 0.3, 0.75, 5, -0.6}, {7});
  Tensor o = out({7});
  ref().project_to_levels(o, x, levels, false);
  // -0.5 is halfway between -1 and 0, 0.25 between 0 and 0.5, 0.75 between 0.5 and 1: all go to the lower level
  check_close(o, {-1, -1, 0, 0.5, 0.5, 1, -1}, 0);

  Tensor pos = make({0, 0.5, 1}, {3}, DType::f32);
  Tensor xs = make({-0.8, 0.2, -0.3, 0, 3}, {5}, DType::f32);
  Tensor os = out({5}, DType::f32);
  ref().project_to_levels(os, xs, pos, true);  // sign(x) * nearest(|x|)
  check_close(os, {-1, 0, -0.5, 0, 1}, 0);
}
