import Hummingbird
import NIOCore

/// The audit dashboard `serve` answers at `/`: one page, its script and its style, embedded in the binary
/// (`Sources/SyncServer/Dashboard`, SwiftPM's `embedInCode` rule), no CDN and no build step.
///
/// Every asset is sent with a strict Content-Security-Policy (scripts and styles from this origin only, no
/// inline code, no framing, API calls to this origin only), `nosniff`, `no-referrer` and `no-store`. The page
/// inserts ERP values as text only and keeps the API token in the tab's session storage.
enum Dashboard {
    /// `Content-Security-Policy` of the dashboard's responses.
    static let contentSecurityPolicy = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
        + "base-uri 'none'; form-action 'self'; frame-ancestors 'none'"

    /// Path → (content type, bytes).
    static let assets: [String: (contentType: String, bytes: [UInt8])] = [
        "/": ("text/html; charset=utf-8", PackageResources.index_html),
        "/dashboard.js": ("text/javascript; charset=utf-8", PackageResources.dashboard_js),
        "/dashboard.css": ("text/css; charset=utf-8", PackageResources.dashboard_css),
    ]

    static let referrerPolicy = TRPCEndpoint.HeaderName("Referrer-Policy")!
    /// For browsers older than `frame-ancestors`.
    static let xFrameOptions = TRPCEndpoint.HeaderName("X-Frame-Options")!

    /// Adds `GET` routes for the assets.
    static func register(in router: Router<BasicRequestContext>) {
        for (path, asset) in assets {
            router.get(RouterPath(stringLiteral: path)) { _, _ -> Response in
                Response(status: .ok, headers: [
                    .contentType: asset.contentType, .contentSecurityPolicy: contentSecurityPolicy, .xContentTypeOptions: "nosniff",
                    referrerPolicy: "no-referrer", .cacheControl: "no-store", xFrameOptions: "DENY",
                ], body: .init(byteBuffer: ByteBuffer(bytes: asset.bytes)))
            }
        }
    }
}
