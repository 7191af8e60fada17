// examples/raw_cuda_train/mlp.hpp: a one-hidden-layer MLP trained with plain
// CUDA kernels (mlp.cu), no framework: in -> hidden -> ReLU -> out, the mean
// binary cross-entropy over logits (as LibTorch's BCEWithLogitsLoss), Adam.
//
// Everything here takes device pointers and runs asynchronously on the stream
// it is given; nothing synchronizes except read_counters(). Matrices are
// row-major. Not thread-safe (one training loop).
#pragma once

#include <cuda_runtime_api.h>

#include <cstddef>
#include <cstdint>
#include <vector>

namespace raw_cuda_train {

/// True/false positives and false negatives of thresholded predictions.
struct confusion {
  unsigned long long tp = 0, fp = 0, fn = 0;
  [[nodiscard]] double precision() const { return tp + fp ? double(tp) / double(tp + fp) : 0.0; }
  [[nodiscard]] double recall() const { return tp + fn ? double(tp) / double(tp + fn) : 0.0; }
  [[nodiscard]] double f1() const {
    const double p = precision(), r = recall();
    return p + r > 0 ? 2 * p * r / (p + r) : 0.0;
  }
};

class mlp {
 public:
  /// Parameters initialized as torch::nn::Linear does (uniform in
  /// +-1/sqrt(fan_in), seeded), Adam state zero; room for batches of up to
  /// max_rows rows. Throws std::runtime_error naming the CUDA call that failed.
  mlp(int in, int hidden, int out, int max_rows, float learning_rate, std::uint64_t seed);
  ~mlp();
  mlp(const mlp&) = delete;
  mlp& operator=(const mlp&) = delete;

  /// One step on `rows` rows: forward, loss (added to the epoch's loss sum),
  /// backward, Adam update. x: rows x in floats, y: rows x out floats (0/1).
  void train_step(const float* x, const float* y, int rows, cudaStream_t stream);
  /// Forward only; adds the thresholded predictions (logit > 0) against y to
  /// the validation counters.
  void evaluate(const float* x, const float* y, int rows, cudaStream_t stream);
  /// Adds the fixed prediction `mask` (out values, 0/1, host memory) against y
  /// to the baseline counters.
  void evaluate_baseline(const std::vector<float>& mask, const float* y, int rows,
                         cudaStream_t stream);
  /// Adds each output's positives in y to the label counts (column sums).
  void count_labels(const float* y, int rows, cudaStream_t stream);

  struct counters {
    double loss_sum = 0;  // sum over training rows of each row's mean loss
    confusion validation, baseline;
    std::vector<double> label_counts;  // out values
  };
  /// Synchronizes `stream`, returns the counters and zeroes them.
  counters read_counters(cudaStream_t stream);

  /// The loss of the current parameters on one batch, computed on the host in
  /// double precision from parameters copied back (the kernels' check).
  double host_loss(const float* x, const float* y, int rows, cudaStream_t stream) const;
  /// The same batch's loss as the kernels compute it (synchronizes).
  double device_loss(const float* x, const float* y, int rows, cudaStream_t stream);

 private:
  void forward(const float* x, int rows, cudaStream_t stream);

  int in_, hidden_, out_, max_rows_;
  float learning_rate_;
  long long step_ = 0;
  // Parameters, gradients and Adam moments: w1 (in x hidden), b1, w2 (hidden x out), b2.
  float *w1_ = nullptr, *b1_ = nullptr, *w2_ = nullptr, *b2_ = nullptr;
  float *g_w1_ = nullptr, *g_b1_ = nullptr, *g_w2_ = nullptr, *g_b2_ = nullptr;
  float *m_ = nullptr, *v_ = nullptr;  // one block each, all parameters in the order above
  // Activations: hidden (rows x hidden), logits (rows x out), their gradients.
  float *h_ = nullptr, *z_ = nullptr, *d_h_ = nullptr, *d_z_ = nullptr;
  float* mask_ = nullptr;  // the baseline's prediction (out)
  // loss sum (double), then 6 confusion counts, then label counts (double x out).
  double* loss_sum_ = nullptr;
  unsigned long long* counts_ = nullptr;
  double* label_counts_ = nullptr;
};

}  // namespace raw_cuda_train
