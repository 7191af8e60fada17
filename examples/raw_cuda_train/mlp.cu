// examples/raw_cuda_train/mlp.cu: the MLP of mlp.hpp in plain CUDA kernels.
//
// Deliberately simple: a 16 x 16 shared-memory tiled matrix product (either
// operand may be transposed), elementwise kernels, one Adam kernel over all
// parameters. cuBLAS would be the production choice; these keep the example
// free of any library but the CUDA runtime.
#include <cuda_runtime.h>

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <random>
#include <stdexcept>
#include <string>
#include <vector>

#include "mlp.hpp"

namespace raw_cuda_train {

namespace {

void check(cudaError_t result, const char* call) {
  if (result != cudaSuccess)
    throw std::runtime_error(std::string(call) + " failed: " + cudaGetErrorString(result));
}
void check_launch(const char* kernel) {
  check(cudaGetLastError(), kernel);
}

constexpr int tile = 16;

// C (m x n) = op(A) (m x k) * op(B) (k x n), row-major; op(A)(i, l)
// is A[l * lda + i] when TransA, else A[i * lda + l]; likewise B.
template <bool TransA, bool TransB>
__global__ void gemm(int m, int n, int k, const float* a, int lda, const float* b, int ldb,
                     float* c, int ldc) {
  __shared__ float a_tile[tile][tile + 1];
  __shared__ float b_tile[tile][tile + 1];
  const int row = blockIdx.y * tile + threadIdx.y;
  const int col = blockIdx.x * tile + threadIdx.x;
  float sum = 0;
  for (int base = 0; base < k; base += tile) {
    const int a_col = base + threadIdx.x;  // l for A's element (row, l)
    const int b_row = base + threadIdx.y;  // l for B's element (l, col)
    float av = 0, bv = 0;
    if (row < m && a_col < k) av = TransA ? a[a_col * lda + row] : a[row * lda + a_col];
    if (b_row < k && col < n) bv = TransB ? b[col * ldb + b_row] : b[b_row * ldb + col];
    a_tile[threadIdx.y][threadIdx.x] = av;
    b_tile[threadIdx.y][threadIdx.x] = bv;
    __syncthreads();
    for (int l = 0; l < tile; ++l) sum += a_tile[threadIdx.y][l] * b_tile[l][threadIdx.x];
    __syncthreads();
  }
  if (row < m && col < n) c[row * ldc + col] = sum;
}

template <bool TransA, bool TransB>
void launch_gemm(int m, int n, int k, const float* a, int lda, const float* b, int ldb, float* c,
                 int ldc, cudaStream_t stream) {
  const dim3 threads(tile, tile);
  const dim3 blocks((n + tile - 1) / tile, (m + tile - 1) / tile);
  gemm<TransA, TransB><<<blocks, threads, 0, stream>>>(m, n, k, a, lda, b, ldb, c, ldc);
  check_launch("gemm");
}

int blocks_for(long long n, int threads = 256) {
  return static_cast<int>((n + threads - 1) / threads);
}

__global__ void add_bias(float* values, const float* bias, int rows, int cols, bool relu) {
  const long long i = blockIdx.x * static_cast<long long>(blockDim.x) + threadIdx.x;
  if (i >= static_cast<long long>(rows) * cols) return;
  const float v = values[i] + bias[i % cols];
  values[i] = relu ? fmaxf(v, 0.0f) : v;
}

// Per element: loss = max(z, 0) - z y + log(1 + exp(-|z|)), dz = (sigmoid(z) - y) * scale.
// The block's loss sum / cols goes to *loss_sum (each row's mean, summed).
__global__ void bce_with_logits(const float* z, const float* y, float* dz, long long count,
                                float scale, int cols, double* loss_sum) {
  __shared__ float partial[256];
  const long long i = blockIdx.x * static_cast<long long>(blockDim.x) + threadIdx.x;
  float loss = 0;
  if (i < count) {
    const float zi = z[i], yi = y[i];
    loss = fmaxf(zi, 0.0f) - zi * yi + log1pf(expf(-fabsf(zi)));
    dz[i] = (1.0f / (1.0f + expf(-zi)) - yi) * scale;
  }
  partial[threadIdx.x] = loss;
  __syncthreads();
  for (int half = blockDim.x / 2; half > 0; half /= 2) {
    if (threadIdx.x < half) partial[threadIdx.x] += partial[threadIdx.x + half];
    __syncthreads();
  }
  if (threadIdx.x == 0) atomicAdd(loss_sum, static_cast<double>(partial[0]) / cols);
}

__global__ void relu_backward(float* d_h, const float* h, long long count) {
  const long long i = blockIdx.x * static_cast<long long>(blockDim.x) + threadIdx.x;
  if (i < count && h[i] <= 0) d_h[i] = 0;
}

// out[c] = sum over rows of values[r, c] (one thread per column).
__global__ void column_sum(const float* values, int rows, int cols, float* out) {
  const int c = blockIdx.x * blockDim.x + threadIdx.x;
  if (c >= cols) return;
  float sum = 0;
  for (int r = 0; r < rows; ++r) sum += values[r * cols + c];
  out[c] = sum;
}
__global__ void add_column_sum(const float* values, int rows, int cols, double* out) {
  const int c = blockIdx.x * blockDim.x + threadIdx.x;
  if (c >= cols) return;
  double sum = 0;
  for (int r = 0; r < rows; ++r) sum += values[r * cols + c];
  out[c] += sum;
}

__global__ void adam(float* params, const float* grads, float* m, float* v, long long count,
                     float learning_rate, float correction1, float correction2) {
  const long long i = blockIdx.x * static_cast<long long>(blockDim.x) + threadIdx.x;
  if (i >= count) return;
  constexpr float beta1 = 0.9f, beta2 = 0.999f, eps = 1e-8f;
  const float g = grads[i];
  const float mi = beta1 * m[i] + (1 - beta1) * g;
  const float vi = beta2 * v[i] + (1 - beta2) * g * g;
  m[i] = mi;
  v[i] = vi;
  params[i] -= learning_rate * (mi / correction1) / (sqrtf(vi / correction2) + eps);
}

// Counts predicted-and-true (tp), predicted-not-true (fp), true-not-predicted
// (fn). Predicted: logits[i] > 0, or mask[i % cols] > 0.5 when mask is set.
__global__ void count_confusion(const float* logits, const float* mask, const float* y,
                                long long count, int cols, unsigned long long* counts) {
  __shared__ unsigned int block_counts[3];
  if (threadIdx.x < 3) block_counts[threadIdx.x] = 0;
  __syncthreads();
  const long long i = blockIdx.x * static_cast<long long>(blockDim.x) + threadIdx.x;
  if (i < count) {
    const bool predicted = mask ? mask[i % cols] > 0.5f : logits[i] > 0;
    const bool truth = y[i] > 0.5f;
    if (predicted && truth) atomicAdd(&block_counts[0], 1u);
    if (predicted && !truth) atomicAdd(&block_counts[1], 1u);
    if (!predicted && truth) atomicAdd(&block_counts[2], 1u);
  }
  __syncthreads();
  if (threadIdx.x < 3 && block_counts[threadIdx.x] != 0)
    atomicAdd(&counts[threadIdx.x], static_cast<unsigned long long>(block_counts[threadIdx.x]));
}

template <class T>
T* device_alloc(std::size_t count) {
  void* memory = nullptr;
  check(cudaMalloc(&memory, count * sizeof(T)), "cudaMalloc");
  check(cudaMemset(memory, 0, count * sizeof(T)), "cudaMemset");
  return static_cast<T*>(memory);
}

std::size_t parameter_count(int in, int hidden, int out) {
  return std::size_t(in) * hidden + hidden + std::size_t(hidden) * out + out;
}

}  // namespace

mlp::mlp(int in, int hidden, int out, int max_rows, float learning_rate, std::uint64_t seed)
    : in_(in), hidden_(hidden), out_(out), max_rows_(max_rows), learning_rate_(learning_rate) {
  const std::size_t count = parameter_count(in, hidden, out);
  w1_ = device_alloc<float>(count);
  b1_ = w1_ + std::size_t(in) * hidden;
  w2_ = b1_ + hidden;
  b2_ = w2_ + std::size_t(hidden) * out;
  g_w1_ = device_alloc<float>(count);
  g_b1_ = g_w1_ + std::size_t(in) * hidden;
  g_w2_ = g_b1_ + hidden;
  g_b2_ = g_w2_ + std::size_t(hidden) * out;
  m_ = device_alloc<float>(count);
  v_ = device_alloc<float>(count);
  h_ = device_alloc<float>(std::size_t(max_rows) * hidden);
  d_h_ = device_alloc<float>(std::size_t(max_rows) * hidden);
  z_ = device_alloc<float>(std::size_t(max_rows) * out);
  d_z_ = device_alloc<float>(std::size_t(max_rows) * out);
  mask_ = device_alloc<float>(out);
  loss_sum_ = device_alloc<double>(1);
  counts_ = device_alloc<unsigned long long>(6);
  label_counts_ = device_alloc<double>(out);

  // As torch::nn::Linear: weights and biases uniform in +-1/sqrt(fan_in).
  std::mt19937_64 rng(seed);
  std::vector<float> host(count);
  auto fill = [&](std::size_t begin, std::size_t n, int fan_in) {
    std::uniform_real_distribution<float> uniform(-1.0f / std::sqrt(float(fan_in)),
                                                  1.0f / std::sqrt(float(fan_in)));
    for (std::size_t i = begin; i < begin + n; ++i) host[i] = uniform(rng);
  };
  fill(0, std::size_t(in) * hidden + hidden, in);
  fill(std::size_t(in) * hidden + hidden, std::size_t(hidden) * out + out, hidden);
  check(cudaMemcpy(w1_, host.data(), count * sizeof(float), cudaMemcpyHostToDevice),
        "cudaMemcpy(parameters)");
}

mlp::~mlp() {
  for (void* p : {static_cast<void*>(w1_), static_cast<void*>(g_w1_), static_cast<void*>(m_),
                  static_cast<void*>(v_), static_cast<void*>(h_), static_cast<void*>(d_h_),
                  static_cast<void*>(z_), static_cast<void*>(d_z_), static_cast<void*>(mask_),
                  static_cast<void*>(loss_sum_), static_cast<void*>(counts_),
                  static_cast<void*>(label_counts_)})
    (void)cudaFree(p);
}

void mlp::forward(const float* x, int rows, cudaStream_t stream) {
  if (rows > max_rows_) throw std::invalid_argument("mlp: batch larger than max_rows");
  // h = relu(x w1 + b1); z = h w2 + b2
  launch_gemm<false, false>(rows, hidden_, in_, x, in_, w1_, hidden_, h_, hidden_, stream);
  add_bias<<<blocks_for(static_cast<long long>(rows) * hidden_), 256, 0, stream>>>(h_, b1_, rows,
                                                                                   hidden_, true);
  check_launch("add_bias");
  launch_gemm<false, false>(rows, out_, hidden_, h_, hidden_, w2_, out_, z_, out_, stream);
  add_bias<<<blocks_for(static_cast<long long>(rows) * out_), 256, 0, stream>>>(z_, b2_, rows, out_,
                                                                                false);
  check_launch("add_bias");
}

void mlp::train_step(const float* x, const float* y, int rows, cudaStream_t stream) {
  forward(x, rows, stream);
  const long long outputs = static_cast<long long>(rows) * out_;
  bce_with_logits<<<blocks_for(outputs), 256, 0, stream>>>(
      z_, y, d_z_, outputs, 1.0f / static_cast<float>(outputs), out_, loss_sum_);
  check_launch("bce_with_logits");
  // dw2 = h^T dz, db2 = column sums of dz, dh = dz w2^T masked by relu.
  launch_gemm<true, false>(hidden_, out_, rows, h_, hidden_, d_z_, out_, g_w2_, out_, stream);
  column_sum<<<blocks_for(out_), 256, 0, stream>>>(d_z_, rows, out_, g_b2_);
  check_launch("column_sum");
  launch_gemm<false, true>(rows, hidden_, out_, d_z_, out_, w2_, out_, d_h_, hidden_, stream);
  relu_backward<<<blocks_for(static_cast<long long>(rows) * hidden_), 256, 0, stream>>>(
      d_h_, h_, static_cast<long long>(rows) * hidden_);
  check_launch("relu_backward");
  // dw1 = x^T dh, db1 = column sums of dh.
  launch_gemm<true, false>(in_, hidden_, rows, x, in_, d_h_, hidden_, g_w1_, hidden_, stream);
  column_sum<<<blocks_for(hidden_), 256, 0, stream>>>(d_h_, rows, hidden_, g_b1_);
  check_launch("column_sum");

  ++step_;
  const long long count = static_cast<long long>(parameter_count(in_, hidden_, out_));
  const float correction1 = 1.0f - std::pow(0.9f, static_cast<float>(step_));
  const float correction2 = 1.0f - std::pow(0.999f, static_cast<float>(step_));
  adam<<<blocks_for(count), 256, 0, stream>>>(w1_, g_w1_, m_, v_, count, learning_rate_,
                                              correction1, correction2);
  check_launch("adam");
}

void mlp::evaluate(const float* x, const float* y, int rows, cudaStream_t stream) {
  forward(x, rows, stream);
  const long long outputs = static_cast<long long>(rows) * out_;
  count_confusion<<<blocks_for(outputs), 256, 0, stream>>>(z_, nullptr, y, outputs, out_, counts_);
  check_launch("count_confusion");
}

void mlp::evaluate_baseline(const std::vector<float>& mask, const float* y, int rows,
                            cudaStream_t stream) {
  check(cudaMemcpyAsync(mask_, mask.data(), out_ * sizeof(float), cudaMemcpyHostToDevice, stream),
        "cudaMemcpyAsync(mask)");
  const long long outputs = static_cast<long long>(rows) * out_;
  count_confusion<<<blocks_for(outputs), 256, 0, stream>>>(nullptr, mask_, y, outputs, out_,
                                                           counts_ + 3);
  check_launch("count_confusion");
  // The mask is pageable host memory: the copy above has read it once this returns.
}

void mlp::count_labels(const float* y, int rows, cudaStream_t stream) {
  add_column_sum<<<blocks_for(out_), 256, 0, stream>>>(y, rows, out_, label_counts_);
  check_launch("add_column_sum");
}

mlp::counters mlp::read_counters(cudaStream_t stream) {
  counters out;
  unsigned long long counts[6];
  out.label_counts.resize(out_);
  check(cudaMemcpyAsync(&out.loss_sum, loss_sum_, sizeof(double), cudaMemcpyDeviceToHost, stream),
        "cudaMemcpyAsync(loss)");
  check(cudaMemcpyAsync(counts, counts_, sizeof counts, cudaMemcpyDeviceToHost, stream),
        "cudaMemcpyAsync(counts)");
  check(cudaMemcpyAsync(out.label_counts.data(), label_counts_, out_ * sizeof(double),
                        cudaMemcpyDeviceToHost, stream),
        "cudaMemcpyAsync(label counts)");
  check(cudaStreamSynchronize(stream), "cudaStreamSynchronize");
  out.validation = {counts[0], counts[1], counts[2]};
  out.baseline = {counts[3], counts[4], counts[5]};
  check(cudaMemsetAsync(loss_sum_, 0, sizeof(double), stream), "cudaMemsetAsync");
  check(cudaMemsetAsync(counts_, 0, sizeof counts, stream), "cudaMemsetAsync");
  check(cudaMemsetAsync(label_counts_, 0, out_ * sizeof(double), stream), "cudaMemsetAsync");
  return out;
}

double mlp::host_loss(const float* x, const float* y, int rows, cudaStream_t stream) const {
  const std::size_t count = parameter_count(in_, hidden_, out_);
  std::vector<float> p(count), hx(std::size_t(rows) * in_), hy(std::size_t(rows) * out_);
  check(cudaMemcpyAsync(p.data(), w1_, count * sizeof(float), cudaMemcpyDeviceToHost, stream),
        "cudaMemcpyAsync(parameters)");
  check(cudaMemcpyAsync(hx.data(), x, hx.size() * sizeof(float), cudaMemcpyDeviceToHost, stream),
        "cudaMemcpyAsync(x)");
  check(cudaMemcpyAsync(hy.data(), y, hy.size() * sizeof(float), cudaMemcpyDeviceToHost, stream),
        "cudaMemcpyAsync(y)");
  check(cudaStreamSynchronize(stream), "cudaStreamSynchronize");
  const float* w1 = p.data();
  const float* b1 = w1 + std::size_t(in_) * hidden_;
  const float* w2 = b1 + hidden_;
  const float* b2 = w2 + std::size_t(hidden_) * out_;
  double total = 0;
  std::vector<double> h(hidden_);
  for (int r = 0; r < rows; ++r) {
    for (int j = 0; j < hidden_; ++j) {
      double s = b1[j];
      for (int i = 0; i < in_; ++i)
        s += double(hx[std::size_t(r) * in_ + i]) * w1[std::size_t(i) * hidden_ + j];
      h[j] = s > 0 ? s : 0;
    }
    for (int o = 0; o < out_; ++o) {
      double z = b2[o];
      for (int j = 0; j < hidden_; ++j) z += h[j] * w2[std::size_t(j) * out_ + o];
      const double t = hy[std::size_t(r) * out_ + o];
      total += std::fmax(z, 0.0) - z * t + std::log1p(std::exp(-std::fabs(z)));
    }
  }
  return total / (double(rows) * out_);
}

double mlp::device_loss(const float* x, const float* y, int rows, cudaStream_t stream) {
  forward(x, rows, stream);
  const long long outputs = static_cast<long long>(rows) * out_;
  double* sum = device_alloc<double>(1);
  bce_with_logits<<<blocks_for(outputs), 256, 0, stream>>>(z_, y, d_z_, outputs, 1.0f, out_, sum);
  check_launch("bce_with_logits");
  double host = 0;
  check(cudaMemcpyAsync(&host, sum, sizeof(double), cudaMemcpyDeviceToHost, stream),
        "cudaMemcpyAsync(loss)");
  check(cudaStreamSynchronize(stream), "cudaStreamSynchronize");
  (void)cudaFree(sum);
  return host / rows;
}

}  // namespace raw_cuda_train
