// Bundled by esbuild (make msal-browser) with Microsoft's @azure/msal-browser from npm into
// .cache/msal-browser/; the library itself is never committed. The single-page app that uses it is in
// harness/client/browser_sign_in.py (_SPA_PAGE), as a partner's app would use the library.
import { PublicClientApplication } from "@azure/msal-browser";

window.msal = { PublicClientApplication };
