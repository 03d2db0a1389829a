// Gets credentials the way the AWS SDK for JavaScript v3 does in a container, from
// $AWS_CONTAINER_CREDENTIALS_FULL_URI with the token of $AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE,
// and prints them as one JSON line. Run by tests/it/serve_sdks.rs; exits 1 with the SDK's
// error on stderr.
import { fromHttp } from "@aws-sdk/credential-providers";

try {
  const credentials = await fromHttp()();
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
