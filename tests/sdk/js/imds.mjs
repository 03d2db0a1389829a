// Gets credentials the way the AWS SDK for JavaScript v3 does on EC2, from the instance
// metadata service at $AWS_EC2_METADATA_SERVICE_ENDPOINT, and prints them as one JSON line.
// Run by tests/it/serve_sdks.rs; exits 1 with the SDK's error on stderr.
import { fromInstanceMetadata } from "@aws-sdk/credential-providers";

try {
  const credentials = await fromInstanceMetadata()();
  process.stdout.write(
    JSON.stringify({
      AccessKeyId: credentials.accessKeyId,
      SecretAccessKey: credentials.secretAccessKey,
      SessionToken: credentials.sessionToken,
      Expiration: credentials.expiration?.toISOString(),
    }) + "\n",
  );
} catch (error) {
  console.error(`${error.name}: ${error.message}`);
  process.exit(1);
}
