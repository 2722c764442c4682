/// The dashboard `GET /dashboard` serves: one self-contained page (no CDN, no framework, no fonts to fetch) whose
/// inline script reads the JSON API (`/api/...`) and draws every chart as SVG, refreshing itself. The page is
/// `Resources/dashboard.html`, embedded in the binary at build time.
enum DashboardPage {
    static let html: [UInt8] = PackageResources.dashboard_html
}
