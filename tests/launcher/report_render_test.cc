// report.html as a person sees it: rendered by headless Chromium to a PNG, then checked by its
// pixels (each task's colour inside each chart's frame, the best task's star, the heat map's
// cells in their places), not by the HTML text.
#include <png.h>

#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <map>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/record/tables.h"
#include "launcher/report.h"
#include "launcher/report_html.h"
#include "launcher/report_svg.h"
#include "convnextv2/util/files.h"

namespace convnextv2::launcher {
namespace {

struct Rgb {
  int r, g, b;
};

Rgb Parse(const std::string& hex) {
  Rgb c{};
  std::sscanf(hex.c_str(), "#%02x%02x%02x", &c.r, &c.g, &c.b);
  return c;
}

struct Picture {
  int width = 0, height = 0;
  std::vector<uint8_t> rgb;
  Rgb At(int x, int y) const {
    const uint8_t* p = &rgb[(static_cast<size_t>(y) * width + x) * 3];
    return {p[0], p[1], p[2]};
  }
  bool Near(int x, int y, Rgb c, int tolerance) const {
    const Rgb p = At(x, y);
    return std::abs(p.r - c.r) <= tolerance && std::abs(p.g - c.g) <= tolerance &&
           std::abs(p.b - c.b) <= tolerance;
  }
};

Picture ReadPng(const std::string& path) {
  Picture pic;
  png_image image{};
  image.version = PNG_IMAGE_VERSION;
  if (!png_image_begin_read_from_file(&image, path.c_str())) {
    ADD_FAILURE() << path << ": " << image.message;
    return pic;
  }
  image.format = PNG_FORMAT_RGB;
  pic.width = image.width;
  pic.height = image.height;
  pic.rgb.resize(PNG_IMAGE_SIZE(image));
  if (!png_image_finish_read(&image, nullptr, pic.rgb.data(), 0, nullptr)) {
    ADD_FAILURE() << path << ": " << image.message;
  }
  return pic;
}

struct Box {
  int x0, y0, x1, y1;  // inclusive
  int width() const { return x1 - x0 + 1; }
  int height() const { return y1 - y0 + 1; }
};

// Runs of indices whose count reaches `min_count`, joining runs separated by at most `gap`.
std::vector<std::pair<int, int>> Runs(const std::vector<int>& counts, int min_count, int gap) {
  std::vector<std::pair<int, int>> runs;
  for (int i = 0; i < static_cast<int>(counts.size()); ++i) {
    if (counts[i] < min_count) continue;
    if (!runs.empty() && i - runs.back().second <= gap + 1) {
      runs.back().second = i;
    } else {
      runs.push_back({i, i});
    }
  }
  return runs;
}

// The plot areas: the only places painted in kPlotBackground, found by projecting those pixels
// on rows (bands of charts) and then, per band, on columns. Curves and grid lines inside a
// frame cut it into pieces, which the projections join.
std::vector<Box> ChartFrames(const Picture& pic) {
  const Rgb bg = Parse(kPlotBackground);
  std::vector<int> per_row(pic.height);
  for (int y = 0; y < pic.height; ++y) {
    for (int x = 0; x < pic.width; ++x) per_row[y] += pic.Near(x, y, bg, 0);
  }
  std::vector<Box> boxes;
  for (const auto& [y0, y1] : Runs(per_row, 60, 6)) {
    std::vector<int> per_col(pic.width);
    for (int y = y0; y <= y1; ++y) {
      for (int x = 0; x < pic.width; ++x) per_col[x] += pic.Near(x, y, bg, 0);
    }
    for (const auto& [x0, x1] : Runs(per_col, 20, 6)) boxes.push_back({x0, y0, x1, y1});
  }
  return boxes;
}

int CountNear(const Picture& pic, const Box& b, Rgb c, int tolerance) {
  int n = 0;
  for (int y = b.y0; y <= b.y1; ++y) {
    for (int x = b.x0; x <= b.x1; ++x) n += pic.Near(x, y, c, tolerance);
  }
  return n;
}

// A grid over blr (3 values) x drop_path (2): task i = (row i / 2, column i % 2), final acc@1
// chosen so that the heat map's scale places them at t = 0, 0.4, 0.2, 0.8, 0.6, 1.
constexpr double kFinal[] = {50, 62, 56, 74, 68, 80};
const char* const kBlr[] = {"1e-3", "2e-3", "4e-3"};
const char* const kDropPath[] = {"0", "0.1"};

using ::convnextv2::testing::MakeTable;

void MakeSweep(SweepManifest* manifest, std::vector<TaskSummary>* tasks) {
  SweepConfig* sweep = manifest->mutable_sweep();
  sweep->set_name("render");
  SweepAxis* a = sweep->add_axis();
  a->set_field("optim.blr");
  for (const char* v : kBlr) a->add_values(v);
  SweepAxis* b = sweep->add_axis();
  b->set_field("model.drop_path");
  for (const char* v : kDropPath) b->add_values(v);
  for (int i = 0; i < 6; ++i) {
    SweepTask* t = manifest->add_tasks();
    t->set_index(i);
    t->set_name(absl::StrFormat("task_%03d", i));
    t->add_assignments(absl::StrCat("optim.blr=", kBlr[i / 2]));
    t->add_assignments(absl::StrCat("model.drop_path=", kDropPath[i % 2]));
    TaskSummary s;
    s.task = *t;
    s.state = "FINISHED";
    s.log.train = MakeTable({"loss", "lr"});
    s.log.eval = MakeTable({"acc1", "acc5", "loss"});
    for (int step = 0; step < 200; ++step) {  // distinct, separated loss curves
      s.log.train.AppendNamed(
          {{"step", step},
           {"epoch", step / 40},
           {"loss", 0.5 + 0.3 * i + 2.0 * std::exp(-step / (20.0 + 10 * i))},
           {"lr", 1e-3 * (1 + i) * std::min(1.0, (step + 1) / 40.0)}});
    }
    for (int epoch = 0; epoch < 5; ++epoch) {
      const double acc1 = kFinal[i] - 4.0 * (4 - epoch);
      s.log.eval.AppendNamed({{"step", epoch * 40 + 39},
                              {"epoch", epoch},
                              {"acc1", acc1},
                              {"acc5", 100 - (100 - acc1) / 4},
                              {"loss", 3.0 - acc1 / 40}});
    }
    s.final_acc1 = s.best_acc1 = kFinal[i];
    s.final_acc5 = s.best_acc5 = s.log.eval.Value("acc5", 4);
    s.final_loss = s.best_loss = s.log.eval.Value("loss", 4);
    tasks->push_back(std::move(s));
  }
}

TEST(ReportRenderTest, ChromiumShowsEveryTaskInEveryChartAndTheHeatMap) {
  ASSERT_TRUE(std::filesystem::exists("/usr/bin/chromium"))
      << "Debian's chromium is missing: run tools/setup.sh";
  SweepManifest manifest;
  std::vector<TaskSummary> tasks;
  MakeSweep(&manifest, &tasks);
  ASSERT_TRUE(SortTasks("acc1", &tasks).ok());  // the page keeps colours by task, not by rank
  // The page and its picture stay in the test's outputs (outputs.zip) for a look by eye.
  const std::string tmp = getenv("TEST_TMPDIR");
  const char* outputs = getenv("TEST_UNDECLARED_OUTPUTS_DIR");
  const std::string dir = outputs != nullptr ? outputs : tmp;
  ASSERT_TRUE(util::WriteFileAtomically(dir + "/report.html", ReportHtml(manifest, tasks)).ok());
  // As root Chromium needs --no-sandbox; a scale factor of 1 keeps CSS pixels = PNG pixels.
  const std::string cmd = absl::StrCat(
      "HOME=", tmp, " /usr/bin/chromium --headless --no-sandbox --disable-gpu --hide-scrollbars ",
      "--force-device-scale-factor=1 --window-size=1700,1900 --user-data-dir=", tmp,
      "/chromium --screenshot=", dir, "/report.png file://", dir, "/report.html >", tmp,
      "/chromium.log 2>&1");
  ASSERT_EQ(std::system(cmd.c_str()), 0) << cmd << "\n" << *util::ReadFile(tmp + "/chromium.log");
  const Picture pic = ReadPng(dir + "/report.png");
  ASSERT_EQ(pic.width, 1700);

  // Five charts: train loss, eval acc@1, acc@5, eval loss, learning rate; each plot area as
  // wide and high as report.h says (less the frame line).
  const std::vector<Box> frames = ChartFrames(pic);
  ASSERT_EQ(frames.size(), 5u);
  for (const Box& f : frames) {
    EXPECT_NEAR(f.width(), kChartWidth - 64 - 18, 3);
    EXPECT_NEAR(f.height(), kChartHeight - 30 - 46, 3);
  }
  for (size_t c = 0; c < frames.size(); ++c) {
    for (int i = 0; i < 6; ++i) {
      const int n = CountNear(pic, frames[c], Parse(TaskColor(i)), 10);
      EXPECT_GE(n, 25) << "chart " << c << ": task " << i << " (" << TaskColor(i) << ") has "
                       << n << " pixels";
    }
    // The best task's star in every chart but the learning rate's (at a point on the frame's
    // edge it reaches beyond the frame).
    const Box around{frames[c].x0 - 10, frames[c].y0 - 10, frames[c].x1 + 10, frames[c].y1 + 10};
    const int stars = CountNear(pic, around, Parse(kBestMarkColor), 12);
    if (c < 4) {
      EXPECT_GE(stars, 20) << "chart " << c;
    } else {
      EXPECT_EQ(stars, 0) << "chart " << c;
    }
  }

  // The heat map: each grid point a block of its colour, placed by row (blr) and column
  // (drop_path), the star on the best one.
  std::map<int, Box> cells;
  for (int i = 0; i < 6; ++i) {
    const Rgb c = Parse(HeatColor((kFinal[i] - 50) / 30));
    Box b{pic.width, pic.height, -1, -1};
    int n = 0;
    for (int y = 0; y < pic.height; ++y) {
      for (int x = 0; x < pic.width; ++x) {
        if (!pic.Near(x, y, c, 1)) continue;
        ++n;
        b = {std::min(b.x0, x), std::min(b.y0, y), std::max(b.x1, x), std::max(b.y1, y)};
      }
    }
    ASSERT_GE(n, kHeatCellWidth * kHeatCellHeight / 2) << "heat map cell of task " << i;
    EXPECT_NEAR(b.width(), kHeatCellWidth, 3) << i;
    EXPECT_NEAR(b.height(), kHeatCellHeight, 3) << i;
    cells[i] = b;
  }
  for (int i = 0; i < 6; ++i) {
    EXPECT_NEAR(cells[i].x0 - cells[0].x0, (i % 2) * kHeatCellWidth, 2) << i;
    EXPECT_NEAR(cells[i].y0 - cells[0].y0, (i / 2) * kHeatCellHeight, 2) << i;
  }
  EXPECT_GE(CountNear(pic, cells[5], Parse(kBestMarkColor), 12), 20);
  EXPECT_EQ(CountNear(pic, cells[0], Parse(kBestMarkColor), 12), 0);
}

}  // namespace
}  // namespace convnextv2::launcher
