// `launcher report SWEEP_DIR`, the drawing: report.html, the page a sweep is judged by: the
// table, a legend with one colour per task, one chart per metric (train loss and learning rate
// by step, eval acc@1, acc@5 and loss as points per epoch) with every task overlaid on shared
// axes and the best task drawn thicker with a star at its best point, and for a grid over two
// axes a heat map of the final acc@1 (inline SVG, no scripts; every text HTML-escaped). The data
// it draws is report.h, the charts report_svg.h.
//
//   std::vector<TaskSummary> tasks = SummarizeTasks(manifest);
//   std::string html = ReportHtml(manifest, tasks);
#ifndef CONVNEXTV2_LAUNCHER_REPORT_HTML_H_
#define CONVNEXTV2_LAUNCHER_REPORT_HTML_H_

#include <string>
#include <vector>

#include "launcher/report.h"
#include "launcher/sweep.pb.h"

namespace convnextv2::launcher {

std::string ReportHtml(const SweepManifest& manifest, const std::vector<TaskSummary>& tasks);

}  // namespace convnextv2::launcher

#endif  // CONVNEXTV2_LAUNCHER_REPORT_HTML_H_
