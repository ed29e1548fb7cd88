// Histogram: latency counts in log-linear buckets (the HdrHistogram idea).
//
// Storing every latency would cost 8 bytes per request; a plain array of
// 1-µs buckets would be either huge or blind to tails. Log-linear buckets
// keep a fixed relative precision over the whole 64-bit range: each power of
// two is cut into 128 equal steps, so any value is known to within 1/128
// (0.8 %), values below 256 are exact, and the whole table is 7424 counters.
// Recording is a bit_width, a shift and an increment.
#pragma once

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <vector>

namespace iolab::loadgen {

class Histogram {
public:
    void record(std::uint64_t value) {
        ++counts_[index_of(value)];
        ++total_;
        sum_ += static_cast<double>(value);
        max_ = std::max(max_, value);
    }

    void merge(const Histogram& other) {
        for (std::size_t i = 0; i < counts_.size(); ++i)
            counts_[i] += other.counts_[i];
        total_ += other.total_;
        sum_ += other.sum_;
        max_ = std::max(max_, other.max_);
    }

    std::uint64_t count() const { return total_; }
    std::uint64_t max() const { return max_; }
    double mean() const { return total_ == 0 ? 0.0 : sum_ / static_cast<double>(total_); }

    // The value at or below which `fraction` (0..1) of the recorded values
    // lie, reported as the top of its bucket (so never optimistic by more than
    // one bucket) but never above the largest value actually recorded.
    std::uint64_t percentile(double fraction) const {
        if (total_ == 0) return 0;
        const double wanted = std::ceil(fraction * static_cast<double>(total_));
        const std::uint64_t rank = std::max<std::uint64_t>(1, static_cast<std::uint64_t>(wanted));
        std::uint64_t seen = 0;
        for (std::size_t i = 0; i < counts_.size(); ++i) {
            seen += counts_[i];
            if (seen >= rank) return std::min(highest_in_bucket(i), max_);
        }
        return max_;
    }

private:
    static constexpr int kSubBucketBits = 7;
    static constexpr std::size_t kSubBuckets = std::size_t{1} << kSubBucketBits;  // 128
    // Values of up to kSubBucketBits + 1 bits (0..255) get a bucket each; every
    // further bit of magnitude (shift 1..56) adds kSubBuckets buckets.
    static constexpr std::size_t kBucketCount = (64 - kSubBucketBits + 1) * kSubBuckets;

    static std::size_t index_of(std::uint64_t value) {
        const int width = std::bit_width(value);
        if (width <= kSubBucketBits + 1) return static_cast<std::size_t>(value);
        // Keep the top kSubBucketBits + 1 bits: `top` is in [128, 255].
        const int shift = width - (kSubBucketBits + 1);
        const std::uint64_t top = value >> shift;
        return static_cast<std::size_t>(shift) * kSubBuckets + static_cast<std::size_t>(top);
    }

    static std::uint64_t highest_in_bucket(std::size_t index) {
        if (index < 2 * kSubBuckets) return index;
        const std::size_t shift = index / kSubBuckets - 1;
        const std::uint64_t top = index - shift * kSubBuckets;
        if (shift + kSubBucketBits + 1 >= 64 && top == 2 * kSubBuckets - 1)
            return std::numeric_limits<std::uint64_t>::max();
        return ((top + 1) << shift) - 1;
    }

    std::vector<std::uint64_t> counts_ = std::vector<std::uint64_t>(kBucketCount, 0);
    std::uint64_t total_ = 0;
    std::uint64_t max_ = 0;
    double sum_ = 0;
};

}  // namespace iolab::loadgen
