// Bundled by esbuild (make calling-sdk) with the Calling SDK from npm into .cache/calling-sdk/;
// the SDK itself is never committed (Microsoft's proprietary licence).
import { CallClient, Features, LocalVideoStream } from "@azure/communication-calling";
import { AzureCommunicationTokenCredential } from "@azure/communication-common";

window.CTE = { CallClient, Features, LocalVideoStream, AzureCommunicationTokenCredential };
