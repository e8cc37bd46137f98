@identity
Feature: Exchange a Teams user's Entra ID token for an ACS token
  A Teams user signs in with Microsoft Entra ID (MSAL) for the Teams scopes of Azure Communication
  Services, and the application exchanges that token for an ACS token with
  POST /teamsUser/:exchangeAccessToken. Source: docs/contracts/identity.md.

  Scenario: A licensed Teams user exchanges an Entra token for an ACS token
    Given the Teams user "licensed" has signed in with the Teams scopes
    When the Entra token is exchanged for an ACS token
    Then the exchange is allowed
    And the ACS token expires when the Entra token expires
    And the ACS token carries the claims the Calling SDK reads

  Scenario Outline: A bad exchange request is rejected exactly as the real service rejects it
    Given the Teams user "licensed" has signed in with the Teams scopes
    When the exchange is attempted with the <token> token, the <app_id> app id and the <user_id> user id
    Then the exchange is rejected with status <status>, code "<code>", message "<message>" and target "<target>"

    Examples: recorded by Microsoft's SDK tests against the real service
      | case                 | token     | app_id    | user_id   | status | code               | message                                         | target |
      | expired token        | expired   | matching  | matching  | 401    | InvalidAccessToken | Provided access token is not valid.             |        |
      | empty token          | empty     | matching  | empty     | 401    | InvalidAccessToken | Provided access token is not valid.             |        |
      | garbage token        | garbage   | matching  | empty     | 401    | InvalidAccessToken | Provided access token is not valid.             |        |
      | empty app id         | signed-in | empty     | matching  | 400    | ValidationError    | AppId: The AppId field is required.             | AppId  |
      | malformed app id     | signed-in | malformed | matching  | 400    | ValidationError    | Provided AppId has invalid format.              | appId  |
      | wrong app id         | signed-in | user-oid  | matching  | 400    | ValidationError    | AAD application is not the expected one.        | appId  |
      | empty user id        | signed-in | matching  | empty     | 400    | ValidationError    | UserId: The UserId field is required.           | UserId |
      | malformed user id    | signed-in | matching  | malformed | 400    | ValidationError    | Provided UserId has invalid format.             | userId |
      | wrong user id        | signed-in | matching  | foreign   | 400    | ValidationError    | Provided AAD token issued for unexpected user.  | userId |

  @emulator-defined
  Scenario: A token issued for another audience is rejected
    Given the Teams user "licensed" has signed in for Microsoft Graph only
    When the Entra token is exchanged for an ACS token
    Then the exchange is rejected with status 401 and code "InvalidAccessToken"
    And the diagnosis is about "not for Graph or another API", not "expired"

  @emulator-defined
  Scenario: An ACS-user token is not accepted as a Teams user's token
    Given the Teams user "licensed" has signed in with the Teams scopes
    And an ACS user has been issued a voip token by the ACS resource
    When the exchange is attempted with the acs-user token, the matching app id and the matching user id
    Then the exchange is rejected with status 401 and code "InvalidAccessToken"
    And the ACS-user token is not a Teams user token
