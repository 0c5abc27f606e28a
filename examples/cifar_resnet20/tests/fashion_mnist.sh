# Sourced by the integration scripts: sets `data` to the Fashion-MNIST folder (the argument given, else
# MINIDL_FASHION_MNIST_DIR, else Debian's dataset-fashion-mnist) or exits 77, which CTest reports as skipped.
#   source fashion_mnist.sh "${N:-}"
data="${1:-${MINIDL_FASHION_MNIST_DIR:-/usr/share/datasets/fashion-mnist}}"
if [[ ! -e "$data/train-images-idx3-ubyte.gz" ]]; then
  echo "skip: Fashion-MNIST not found in $data (install dataset-fashion-mnist)"
  exit 77
fi
