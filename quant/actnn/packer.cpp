// The ActNN packer: what each saved tensor becomes (see packer.h), the payload the tape holds, and the byte
// accounting (a payload adds its bytes when packed and removes them when the tape frees it).
#include "quant/actnn/packer.h"

#include <algorithm>
#include <atomic>
#include <iomanip>
#include <mutex>
#include <sstream>
#include <unordered_map>
#include <vector>

#include "backends/backend.h"
#include "tensor/alloc_trace.h"

namespace minidl::quant::actnn {

using autograd::SaveInfo;
using autograd::SaveKind;

namespace {

enum class Form : uint8_t { Exact, Codes, Bits, Index };
enum Cat : int { kCodes, kMeta, kMasks, kIndices, kExact, kParams, kCats };

struct BitMapEntry {
  std::string module, op, kind, form;
  int bits = 0;  // fixed bits (codes), 1 (masks), 8/32 (indices), 32/64 (exact)
  double mean_bits = 0;
  int64_t elements = 0;
  size_t bytes = 0;
};

bool is_conv_or_linear(const std::string& op) { return op == "conv2d" || op == "linear"; }
bool is_batch_norm(const std::string& op) { return op.rfind("batch_norm", 0) == 0; }

}  // namespace

struct Packer::State {
  Config cfg;
  std::shared_ptr<BitPolicy> policy = std::make_shared<FixedBits>();
  std::atomic<uint64_t> counter{0};  // one random stream per compressed tensor

  mutable std::mutex mu;
  size_t bytes[kCats] = {};
  size_t peak_bytes[kCats] = {};
  size_t peak_total = 0;
  std::unordered_map<const Storage*, std::pair<int, size_t>> exact_refs;  // storage -> (payloads, bytes counted)
  // The codes of a tensor saved by several ops (a block input read by conv1 and the shortcut's conv) are stored
  // once: storage -> the latest codes payload made from it (checked against the source before reuse; a later save
  // at more bits re-makes its codes in place, see share_codes).
  std::unordered_map<const Storage*, std::weak_ptr<void>> code_cache;
  std::vector<BitMapEntry> bit_map;
  std::unordered_map<std::string, size_t> bit_map_index;

  size_t total_locked() const { return bytes[kCodes] + bytes[kMeta] + bytes[kMasks] + bytes[kIndices] + bytes[kExact]; }
  void add_locked(Cat c, size_t n) {
    bytes[c] += n;
    const size_t t = total_locked();
    if (t > peak_total) {
      peak_total = t;
      std::copy(std::begin(bytes), std::end(bytes), std::begin(peak_bytes));
    }
  }
  void record(const SaveInfo& info, const std::string& form, int bits, double mean_bits, int64_t elements,
              size_t nbytes) {
    const std::string key = info.module + "|" + info.op + "|" + autograd::save_kind_name(info.kind);
    std::lock_guard<std::mutex> lock(mu);
    auto it = bit_map_index.find(key);
    if (it == bit_map_index.end()) {
      it = bit_map_index.emplace(key, bit_map.size()).first;
      bit_map.push_back({});
    }
    bit_map[it->second] = {info.module, info.op, autograd::save_kind_name(info.kind), form, bits, mean_bits,
                           elements,    nbytes};
  }
};

namespace {

// One saved tensor as the tape holds it. Its destructor returns its bytes to the accounting.
struct Payload {
  std::shared_ptr<Packer::State> state;
  SaveInfo info;
  Form form = Form::Exact;
  Shape sizes;
  DType dtype = DType::f32;
  Device device = kCPU;
  MemoryFormat format = MemoryFormat::Contiguous;
  Tensor exact, codes, meta, bits, index;
  ActnnCodec codec;
  // Codes shared by several saves of one tensor are re-made at higher bits when a later save asks for more
  // (share_codes), during the forward that saved them; backward only reads them.
  // accounting
  Cat cat = kExact;
  size_t nbytes = 0;                 // bytes of codes / bits / index (or the exact storage)
  size_t meta_bytes = 0;             // codec metadata
  const Storage* storage = nullptr;  // Exact: the storage counted once
  // Codes: what they were made from, so a second save of the same tensor can share them
  std::weak_ptr<Storage> src;
  uint64_t src_version = 0;
  int64_t src_offset = 0;
  Shape src_strides;

  ~Payload() {
    std::lock_guard<std::mutex> lock(state->mu);
    if (form == Form::Exact) {
      auto it = state->exact_refs.find(storage);
      if (it != state->exact_refs.end() && --it->second.first == 0) {
        state->bytes[cat] -= it->second.second;
        state->exact_refs.erase(it);
      }
      return;
    }
    state->bytes[cat] -= nbytes;
    state->bytes[kMeta] -= meta_bytes;
  }
};

using PayloadPtr = std::shared_ptr<const Payload>;

bool dense(const Tensor& t) { return t.is_contiguous() || t.is_channels_last(); }

Tensor empty_like_payload(const Payload& p, DType dt) {
  return empty(p.sizes, TensorOptions().dtype(dt).device(p.device), p.format);
}

void fill_exact(const std::shared_ptr<Packer::State>& st, Payload& p, const Tensor& t) {
  p.form = Form::Exact;
  p.exact = t;
  p.cat = p.info.kind == SaveKind::Parameter ? kParams : kExact;
  p.storage = t.storage().get();
  const size_t nb = t.storage()->nbytes();
  std::lock_guard<std::mutex> lock(st->mu);
  auto& ref = st->exact_refs[p.storage];
  if (ref.first++ == 0) {
    ref.second = nb;
    st->add_locked(p.cat, nb);
  }
}

double mean_bits_of(const ActnnCodec& c) {
  double sum = 0;
  for (uint8_t v : c.bits) sum += v;
  return c.bits.empty() ? 0 : sum / static_cast<double>(c.bits.size());
}

/// Codes at the given per-sample bits (x floating, numel > 0).
void fill_codes(const std::shared_ptr<Packer::State>& st, Payload& p, const Tensor& x, std::vector<uint8_t> bits) {
  const Tensor xd = dense(x) ? x : x.contiguous();
  p.form = Form::Codes;
  p.format = xd.memory_format();
  ActnnCodec& c = p.codec;
  c.n = xd.dim() == 0 ? 1 : xd.size(0);
  c.f = c.n > 0 ? xd.numel() / c.n : 0;
  c.group = st->cfg.group_size;
  c.per_group = st->cfg.per_group;
  c.bf16_meta = st->cfg.bf16_meta;
  c.key = actnn_splitmix64(st->cfg.seed) + st->counter.fetch_add(1);
  c.bits = std::move(bits);
  const TensorOptions u8 = TensorOptions().dtype(DType::u8).device(xd.device());
  p.codes = empty({c.code_bytes()}, u8);
  p.meta = empty({c.meta_bytes()}, u8);
  backend_for(xd).actnn_quantize(p.codes, p.meta, xd, c);
  p.cat = kCodes;
  p.nbytes = static_cast<size_t>(c.code_bytes());
  p.meta_bytes = static_cast<size_t>(c.meta_bytes()) + c.bits.size();  // + one byte per sample's bit width
  std::lock_guard<std::mutex> lock(st->mu);
  st->add_locked(kMeta, p.meta_bytes);
  st->add_locked(kCodes, p.nbytes);
}

void fill_bits(const std::shared_ptr<Packer::State>& st, Payload& p, const Tensor& x) {
  const Tensor xd = dense(x) ? x : x.contiguous();
  p.form = Form::Bits;
  p.format = xd.memory_format();
  p.bits = empty({(xd.numel() + 7) / 8}, TensorOptions().dtype(DType::u8).device(xd.device()));
  backend_for(xd).pack_mask_bits(p.bits, xd);
  p.cat = kMasks;
  p.nbytes = static_cast<size_t>(p.bits.numel());
  std::lock_guard<std::mutex> lock(st->mu);
  st->add_locked(kMasks, p.nbytes);
}

/// Narrowed integer indices; false (nothing done) when they do not fit i32.
bool fill_index(const std::shared_ptr<Packer::State>& st, Payload& p, const Tensor& x) {
  const Tensor x64 = x.to(DType::f64);
  const double mx = x64.max().item<double>(), mn = -(x64 * -1.0).max().item<double>();
  DType to;
  if (mn >= 0 && mx <= 255) {
    to = DType::u8;
  } else if (mn >= -2147483648.0 && mx <= 2147483647.0) {
    to = DType::i32;
  } else {
    return false;
  }
  if (dtype_size(to) >= x.element_size()) return false;
  p.form = Form::Index;
  p.format = x.memory_format();
  p.index = empty(x.sizes(), TensorOptions().dtype(to).device(x.device()), p.format);
  backend_for(x).copy(p.index, x);
  p.cat = kIndices;
  p.nbytes = p.index.nbytes();
  std::lock_guard<std::mutex> lock(st->mu);
  st->add_locked(kIndices, p.nbytes);
  return true;
}

/// The codes payload already made from exactly this tensor (same storage, version and view), if any.
std::shared_ptr<Payload> cached_codes(const std::shared_ptr<Packer::State>& st, const Tensor& t) {
  std::lock_guard<std::mutex> lock(st->mu);
  auto it = st->code_cache.find(t.storage().get());
  if (it == st->code_cache.end()) return nullptr;
  auto p = std::static_pointer_cast<Payload>(it->second.lock());
  if (!p || p->src.lock() != t.storage() || p->src_version != t.version() || p->src_offset != t.offset() ||
      p->sizes != t.sizes() || p->src_strides != t.strides() || p->dtype != t.dtype() ||
      p->codec.bits.size() != static_cast<size_t>(t.dim() == 0 ? 1 : t.size(0)))
    return nullptr;
  return p;
}

/// A later save of a tensor that already has codes: one set of codes serves every save, at each sample's highest
/// bits any of them asked for. When this save asks for more than the codes have, they are made again from the
/// tensor (still the same version, so the same values) at the per-sample maximum and replace the old ones in the
/// payload every save holds: the earlier saves then restore a finer copy than they asked for (lower variance, the
/// same expectation), and the tape holds one copy instead of one per bit width. Returns whether it re-made them.
bool share_codes(const std::shared_ptr<Packer::State>& st, Payload& p, const Tensor& t,
                 const std::vector<uint8_t>& bits) {
  std::vector<uint8_t> need = p.codec.bits;
  for (size_t i = 0; i < need.size(); ++i) need[i] = std::max(need[i], bits[i]);
  if (need == p.codec.bits) return false;
  {
    std::lock_guard<std::mutex> lock(st->mu);  // the old codes leave the tape before the new ones arrive
    st->bytes[kCodes] -= p.nbytes;
    st->bytes[kMeta] -= p.meta_bytes;
  }
  fill_codes(st, p, t, std::move(need));
  return true;
}

void remember_codes(const std::shared_ptr<Packer::State>& st, const std::shared_ptr<Payload>& p, const Tensor& t) {
  p->src = t.storage();
  p->src_version = t.version();
  p->src_offset = t.offset();
  p->src_strides = t.strides();
  std::lock_guard<std::mutex> lock(st->mu);
  if (st->code_cache.size() > 4096) {  // drop entries whose payload the tape has freed
    for (auto i = st->code_cache.begin(); i != st->code_cache.end();)
      i = i->second.expired() ? st->code_cache.erase(i) : std::next(i);
  }
  st->code_cache[t.storage().get()] = std::static_pointer_cast<void>(p);
}

PayloadPtr pack(const std::shared_ptr<Packer::State>& st, const Tensor& t, const SaveInfo& info) {
  auto p = std::make_shared<Payload>();
  p->state = st;
  p->info = info;
  p->sizes = t.sizes();
  p->dtype = t.dtype();
  p->device = t.device();
  p->format = t.memory_format();
  const Config& cfg = st->cfg;
  const bool on = cfg.active() && t.numel() > 0;
  const bool floating = is_floating(t.dtype());
  std::string form = "exact";
  int bits = static_cast<int>(t.element_size() * 8);
  double mean_bits = bits;
  int fixed = 0;
  if (on && floating && info.kind == SaveKind::Activation) {
    const bool conv = is_conv_or_linear(info.op) && cfg.level >= Level::L1;
    const bool bn = is_batch_norm(info.op) && cfg.level >= Level::L2;
    if (conv || bn) {
      auto it = cfg.module_bits.find(info.module);
      fixed = it != cfg.module_bits.end() ? it->second : cfg.bits;
    }
  } else if (on && floating && info.kind == SaveKind::Coefficient) {
    fixed = cfg.coef_bits;
  }
  if (fixed > 0) {
    std::vector<uint8_t> b = info.kind == SaveKind::Coefficient ? FixedBits().sample_bits(info, t, fixed)
                                                                : st->policy->sample_bits(info, t, fixed);
    if (std::shared_ptr<Payload> same = cached_codes(st, t)) {
      const bool remade = share_codes(st, *same, t, b);
      if (info.kind != SaveKind::Coefficient) st->policy->on_packed(info, same->codec, same->meta);
      const double mean = mean_bits_of(same->codec);
      if (!remade) {
        st->record(info, "codes (shared)", fixed, mean, t.numel(), 0);
      } else {  // re-made at more bits: this save's entry shows the bytes, the earlier one's none
        st->record(same->info, "codes (shared)", fixed, mean, t.numel(), 0);
        st->record(info, "codes", fixed, mean, t.numel(), same->nbytes + same->meta_bytes);
      }
      return same;
    }
    fill_codes(st, *p, t, std::move(b));
    remember_codes(st, p, t);
    if (info.kind != SaveKind::Coefficient) st->policy->on_packed(info, p->codec, p->meta);
    form = "codes";
    bits = fixed;
    mean_bits = p->codec.bits.empty() ? fixed : mean_bits_of(p->codec);
  } else if (on && info.kind == SaveKind::Mask && (floating || t.dtype() == DType::u8)) {
    fill_bits(st, *p, t);
    form = "1-bit mask";
    bits = 1;
    mean_bits = 1;
  } else if (on && info.kind == SaveKind::Index && !floating && fill_index(st, *p, t)) {
    form = "index";
    bits = static_cast<int>(p->index.element_size() * 8);
    mean_bits = bits;
  } else {
    fill_exact(st, *p, t);
  }
  const size_t nb = p->form == Form::Exact ? t.nbytes() : p->nbytes + p->meta_bytes;
  if (info.kind != SaveKind::Parameter) st->record(info, form, bits, mean_bits, t.numel(), nb);
  return p;
}

Tensor unpack(const PayloadPtr& p) {
  switch (p->form) {
    case Form::Exact: return p->exact;
    case Form::Codes: {
      p->state->policy->on_unpack(p->info);
      Tensor out = empty_like_payload(*p, p->dtype);
      backend_for(out).actnn_dequantize(out, p->codes, p->meta, p->codec);
      return out;
    }
    case Form::Bits: {
      Tensor out = empty_like_payload(*p, p->dtype);
      backend_for(out).unpack_mask_bits(out, p->bits);
      return out;
    }
    case Form::Index: {
      Tensor out = empty_like_payload(*p, p->dtype);
      backend_for(out).copy(out, p->index);
      return out;
    }
  }
  MINIDL_FAIL("actnn: corrupt payload");
}

}  // namespace

Packer::Packer(Config cfg) : state_(std::make_shared<State>()) {
  cfg.validate();
  state_->cfg = std::move(cfg);
}
Packer::~Packer() = default;

const Config& Packer::config() const { return state_->cfg; }

void Packer::set_bit_policy(std::shared_ptr<BitPolicy> policy) {
  MINIDL_CHECK(policy != nullptr, "actnn: set_bit_policy needs a policy");
  state_->policy = std::move(policy);
}

autograd::SavedTensorHooks Packer::hooks() const {
  std::shared_ptr<State> st = state_;
  autograd::SavedTensorHooks h;
  h.pack = [st](const Tensor& t, const SaveInfo& info) -> std::any {
    AllocTagGuard tag("actnn", "pack");
    return pack(st, t, info);
  };
  h.unpack = [](const std::any& a) -> Tensor {
    AllocTagGuard tag("actnn", "unpack");
    return unpack(std::any_cast<const PayloadPtr&>(a));
  };
  h.mask_bits = [](const std::any& a) -> autograd::PackedMask {
    const PayloadPtr& p = std::any_cast<const PayloadPtr&>(a);
    if (p->form != Form::Bits) return {};
    return {p->bits, p->sizes, p->format};
  };
  return h;
}

int Packer::layer_bits(const SaveInfo& info) const {
  const Config& cfg = state_->cfg;
  if (!cfg.active() || info.kind != SaveKind::Activation) return 0;
  const bool conv = is_conv_or_linear(info.op) && cfg.level >= Level::L1;
  const bool bn = is_batch_norm(info.op) && cfg.level >= Level::L2;
  if (!conv && !bn) return 0;
  auto it = cfg.module_bits.find(info.module);
  return it != cfg.module_bits.end() ? it->second : cfg.bits;
}

namespace {
TapeBytes to_tape_bytes(const size_t* b) {
  TapeBytes t;
  t.codes = b[kCodes];
  t.meta = b[kMeta];
  t.masks = b[kMasks];
  t.indices = b[kIndices];
  t.exact = b[kExact];
  t.params = b[kParams];
  return t;
}
}  // namespace

TapeBytes Packer::live() const {
  std::lock_guard<std::mutex> lock(state_->mu);
  return to_tape_bytes(state_->bytes);
}

TapeBytes Packer::peak() const {
  std::lock_guard<std::mutex> lock(state_->mu);
  return to_tape_bytes(state_->peak_bytes);
}

void Packer::reset_peak() {
  std::lock_guard<std::mutex> lock(state_->mu);
  state_->peak_total = state_->total_locked();
  std::copy(std::begin(state_->bytes), std::end(state_->bytes), std::begin(state_->peak_bytes));
}

std::string Packer::bit_map() const {
  std::lock_guard<std::mutex> lock(state_->mu);
  std::ostringstream os;
  os << std::left << std::setw(28) << "module" << std::setw(22) << "op" << std::setw(12) << "kind" << std::setw(12)
     << "stored as" << std::right << std::setw(6) << "bits" << std::setw(12) << "elements" << std::setw(12) << "bytes"
     << "\n";
  for (const BitMapEntry& e : state_->bit_map) {
    std::ostringstream bits;
    if (e.form == "codes" && e.mean_bits != e.bits) {
      bits << std::fixed << std::setprecision(2) << e.mean_bits;
    } else {
      bits << e.bits;
    }
    os << std::left << std::setw(28) << (e.module.empty() ? "-" : e.module) << std::setw(22) << e.op << std::setw(12)
       << e.kind << std::setw(12) << e.form << std::right << std::setw(6) << bits.str() << std::setw(12) << e.elements
       << std::setw(12) << e.bytes << "\n";
  }
  return os.str();
}

}  // namespace minidl::quant::actnn
